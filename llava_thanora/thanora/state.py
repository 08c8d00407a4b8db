"""ThanoRAState: the allocation, the initial blocks and the training-time penalty collector."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .config import ThanoRAConfig
from .penalty import PenaltyCollector


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass
class ModuleAllocation:
    """Per-task spectrum statistics and ranks of one adapted module."""

    entropies: list[float | None]
    """Normalized entropy H_t per task (task order of the state); None for a task that sent no token through
    the module in the preview (it gets r_min there)."""
    shares: list[float | None]
    """softmax(H / tau) per task over the tasks with an entropy (None for the others)."""
    ranks: list[int]
    """Rank r_t per task; they sum to r - r_coop."""
    weight_rms: float | None = None
    """RMS singular value `||W||_F / sqrt(min(d_out, d_in))` of the module's original frozen weight: the scale
    of the B-side floor of the penalty (None in states saved before it existed: then no floor)."""

    def slices(self, r_coop: int) -> list[tuple[int, int]]:
        """[start, end) of each task block in the LoRA rank dimension (cooperative block is [0, r_coop))."""
        out, start = [], r_coop
        for rank in self.ranks:
            out.append((start, start + rank))
            start += rank
        return out


@dataclass
class ThanoRAState:
    """Everything ThanoRA knows about an adapted model beyond the peft LoRA weights."""

    tasks: list[str]
    """Task names, in block order."""
    r: int
    """Total LoRA rank of every adapted module."""
    r_coop: int
    """Rank of the cooperative block (first r_coop rows of A / columns of B)."""
    config: ThanoRAConfig
    """The ThanoRA hyper-parameters used."""
    modules: dict[str, ModuleAllocation]
    """Allocation per module name, relative to the base model (no `base_model.model.` prefix)."""
    init_blocks: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)
    """(A0, B0) per module: the initial LoRA factors (float32, CPU). Kept in `context` mode only, where the
    portable adapter and the residual base need them; empty in `activation` and `random` mode."""
    adapter_name: str = "default"
    """peft adapter name."""
    lora_alpha: float | None = None
    """The trained adapter's LoRA alpha (the portable adapter of context mode is written with another one)."""
    saved_penalties: dict[str, float | None] = field(default_factory=dict)
    """Penalties read back from a saved thanora.json (shown until training records new ones)."""
    collector: PenaltyCollector | None = field(default=None, repr=False)
    """Training-time penalty collector; set by `attach`."""

    def attach(self, layers: dict[str, nn.Module]) -> None:
        """Install the penalty hooks on `layers` (the model's LoRA layers by base-model name, as
        `llava_thanora.residual.lora_layers` lists them), replacing earlier ones."""
        if self.collector is not None:
            self.collector.remove()
        missing = set(self.modules) - set(layers)
        if missing:
            raise ValueError(f"model has no LoRA layer for ThanoRA modules {sorted(missing)[:5]}")
        self.collector = PenaltyCollector(
            {name: layers[name] for name in self.modules},
            {name: alloc.ranks for name, alloc in self.modules.items()},
            self.r_coop, self.config.penalty_side, self.config.lam, self.adapter_name,
            mu={name: self.config.penalty_floor * (alloc.weight_rms or 0.0) for name, alloc in self.modules.items()},
        )

    def start_step(self) -> None:
        """Begin recording the penalty: call right before the model forward of a training step."""
        self._require_collector().start_step()

    def finish_step(self, training: bool = True) -> torch.Tensor:
        """Mean over adapted modules of `spr_penalty` for the forward since `start_step` (scalar tensor,
        with grad when lam > 0). Add `config.lam * penalty` to the loss before backward."""
        return self._require_collector().finish_step(training)

    def _require_collector(self) -> PenaltyCollector:
        if self.collector is None:
            raise RuntimeError("ThanoRAState has no model attached; call state.attach(peft_model) first")
        return self.collector

    def penalties(self) -> dict[str, float | None]:
        """Latest penalty per module (None before the module was seen in a training step)."""
        latest = self.collector.latest() if self.collector is not None else {}
        return {name: latest[name] if name in latest else self.saved_penalties.get(name) for name in self.modules}

    def to_json_dict(self) -> dict[str, Any]:
        """The content of thanora.json (exact shape documented in docs)."""
        penalties = self.penalties()
        modules = {}
        for name, alloc in self.modules.items():
            tasks = {
                task: {"entropy": alloc.entropies[i], "share": alloc.shares[i], "rank": alloc.ranks[i],
                       "slice": list(span)}
                for i, (task, span) in enumerate(zip(self.tasks, alloc.slices(self.r_coop)))
            }
            modules[name] = {"coop_slice": [0, self.r_coop], "tasks": tasks, "penalty": penalties[name],
                             "weight_rms": alloc.weight_rms}
        return {"tasks": list(self.tasks), "r": self.r, "r_coop": self.r_coop, "lora_alpha": self.lora_alpha,
                "config": self.config.to_dict(), "modules": modules}

    @classmethod
    def from_json_dict(cls, data: dict[str, Any], source: str = "thanora.json") -> ThanoRAState:
        """Rebuild a state (without initial blocks) from `to_json_dict` output; errors name `source`."""
        try:
            tasks = list(data["tasks"])
            modules, penalties = {}, {}
            for name, entry in data["modules"].items():
                per_task = [entry["tasks"][task] for task in tasks]
                modules[name] = ModuleAllocation(
                    [_optional_float(t["entropy"]) for t in per_task], [_optional_float(t["share"]) for t in per_task],
                    [int(t["rank"]) for t in per_task], _optional_float(entry.get("weight_rms")),
                )
                penalties[name] = entry.get("penalty")
            return cls(tasks, int(data["r"]), int(data["r_coop"]), ThanoRAConfig.from_dict(data["config"]),
                       modules, saved_penalties=penalties, lora_alpha=_optional_float(data.get("lora_alpha")))
        except (KeyError, TypeError) as err:
            raise ValueError(f"{source}: malformed ThanoRA state ({type(err).__name__}: {err})") from err
