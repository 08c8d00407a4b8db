"""`--method merge_ta | merge_ties | merge_dare`: an `individual` run's per-task adapters merged into one adapter
(no training).

`--merge_individual_dir DIR` names the individual run. Its adapters are combined by `merging.merge_adapters`
(peft's `add_weighted_adapter`: ta = exact weighted sum, ties / dare = TIES / DARE-linear on the dense task
vectors, refactored by SVD) with `--merge_weights`, `--merge_density`, `--merge_svd_rank`, and saved as an
ordinary peft adapter relative to the original base. Trained projectors (and any other non-adapter tensors)
are merged the same way: their task vectors `P_t - P_0` go through the same combination with the same weights
(peft's `merge_utils`), recorded in `merge.json`.
Merging needs no DeepSpeed: run it as `python train.py`.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..data.conversation import PROMPT_FORMAT_FILE, read_conv_mode
from ..distributed import is_zero3
from ..flags import documented
from ..methods.base import NON_LORA_FILE, save_non_lora
from ..train.main import load_model
from .base import Recipe
from .individual import read_individual

logger = logging.getLogger("llava_thanora")
DEFAULT_DENSITY = 0.5


@documented
class MergeArguments:
    merge_individual_dir: str | None = None
    """--method merge_*: the --output_dir of a --method individual run (holds individual.json)."""
    merge_weights: str | None = None
    """--method merge_*: comma-separated weight per task, in individual.json order (default 1 each: a plain sum)."""
    merge_density: float | None = None
    """--method merge_ties / merge_dare: fraction of each task vector kept (TIES: largest magnitudes; DARE:
    random); default 0.5."""
    merge_svd_rank: int | None = None
    """--method merge_ties / merge_dare: rank of the merged adapter (default: sum of the task ranks, which undoes
    part of the pruning; 0 = full rank, exact)."""


def read_non_lora(adapter_dirs: dict[str, str]) -> list[dict[str, torch.Tensor]]:
    """Every task's `non_lora_trainables.safetensors` (e.g. projectors); all must hold the same tensors."""
    loaded = {task: load_file(str(Path(path) / NON_LORA_FILE)) for task, path in adapter_dirs.items()}
    first_task, first = next(iter(loaded.items()))
    for task, tensors in loaded.items():
        if tensors.keys() != first.keys():
            raise ValueError(f"task {task!r} trained other non-adapter tensors than task {first_task!r}: "
                             f"{sorted(tensors.keys() ^ first.keys())[:3]}")
    return list(loaded.values())


class MergeRecipe(Recipe):
    """Base of merge_ta / merge_ties / merge_dare: `combination` is a `merging.merge_adapters` kind."""

    arguments = MergeArguments
    combination = "ta"

    def run(self, parsed, methods):
        """Merge the adapters of `--merge_individual_dir` and save the result into `--output_dir`."""
        from transformers import set_seed

        from .merging import merge_adapters, merge_tensors, save_merged_adapter

        b, args = self.args, parsed.training
        if not b.merge_individual_dir:
            raise ValueError(f"--method {self.name} needs --merge_individual_dir: the --output_dir of a --method "
                             f"individual run")
        if self.combination == "ta" and (b.merge_density is not None or b.merge_svd_rank is not None):
            raise ValueError("--merge_density and --merge_svd_rank have no effect with --method merge_ta (an exact "
                             "sum of the task vectors); use merge_ties or merge_dare")
        density = DEFAULT_DENSITY if b.merge_density is None else b.merge_density
        adapters = read_individual(b.merge_individual_dir)
        formats = {task: read_conv_mode(path) for task, path in adapters.items()}
        if len(set(formats.values())) > 1:
            raise ValueError(f"the task adapters were trained with different --conv_mode: {formats}")
        weights = [float(w) for w in b.merge_weights.split(",")] if b.merge_weights else None
        set_seed(args.seed)  # DARE drops entries at random
        model, processor = load_model(parsed)
        if is_zero3(model):
            raise ValueError(f"--method {self.name} trains nothing: run it as `python train.py`, without --deepspeed")
        tuned = read_non_lora(adapters)
        state = model.state_dict()
        missing = sorted(set(tuned[0]) - set(state))
        if missing:
            raise KeyError(f"non_lora_trainables of {b.merge_individual_dir} name tensors the base lacks: {missing[:3]}")
        base = {k: state[k].detach().to("cpu", copy=True) for k in tuned[0]}  # P_0, before peft changes the model
        merged = merge_adapters(model.to(args.device), adapters, self.combination, weights, density, b.merge_svd_rank)
        if args.should_save:
            out = Path(args.output_dir)
            save_merged_adapter(merged, out)
            save_non_lora(str(out), merge_tensors(base, tuned, self.combination, weights or [1.0] * len(adapters),
                                                  density))
            processor.save_pretrained(str(out))
            if next(iter(formats.values())) is not None:  # the merged adapter is asked the way its tasks were
                shutil.copy(Path(next(iter(adapters.values()))) / PROMPT_FORMAT_FILE, out / PROMPT_FORMAT_FILE)
            record = {"method": self.name, "combination": self.combination, "tasks": list(adapters),
                      "weights": weights or [1.0] * len(adapters), "density": density,
                      "svd_rank": b.merge_svd_rank, "individual_dir": b.merge_individual_dir,
                      "non_lora_trainables": "task vectors merged like the adapters (same weights)"}
            (out / "merge.json").write_text(json.dumps(record, indent=2) + "\n")
            logger.info(f"{self.name}: merged {list(adapters)} into {out}")
        return merged


class MergeTARecipe(MergeRecipe):
    name, combination = "merge_ta", "ta"


class MergeTIESRecipe(MergeRecipe):
    name, combination = "merge_ties", "ties"


class MergeDARERecipe(MergeRecipe):
    name, combination = "merge_dare", "dare_linear"
