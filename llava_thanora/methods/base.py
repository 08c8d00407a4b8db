"""What a training method is: how it wraps the model, what it adds to the loss, how it saves and resumes.

Every method saves into the same layout so that `eval.generate` and `scripts/merge_lora_weights.py` can load any
of them from the files present (never from folder names):

    adapter_config.json, adapter_model.safetensors   peft adapter relative to the ORIGINAL base weights
    non_lora_trainables.safetensors                  projector and other trained non-adapter weights
    <method files>                                   e.g. thanora.json, moelora_config.json
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

NON_LORA_FILE = "non_lora_trainables.safetensors"
PEFT_PREFIX = "base_model.model."


@dataclass
class BuildContext:
    """What a method may use to build its trainable model."""

    model_args: Any
    method_args: dict[str, Any]
    """The parsed ThanoRA/MoE-LoRA argument dataclasses by name ("thanora", "moelora")."""
    training_args: Any
    train_dataset: Any = None
    collator: Any = None
    target_modules: list[str] | None = None
    resume_dir: str | None = None
    """A checkpoint to restore method state from instead of running data-driven initialization again."""


class Method:
    """Base class: subclasses implement `build`, and override the hooks they need."""

    name = "base"
    mergeable = True

    def build(self, model: nn.Module, ctx: BuildContext) -> nn.Module:
        raise NotImplementedError

    def start_step(self, model: nn.Module) -> None:
        """Called right before the training forward pass."""

    def extra_losses(self, model: nn.Module) -> dict[str, tuple[float, torch.Tensor]]:
        """Called right after the forward pass: {name: (weight, value)}; the weighted values join the loss."""
        return {}

    def save(self, model: nn.Module, output_dir: str, trainable: dict[str, torch.Tensor]) -> None:
        """Write the adapter files. `trainable` holds every trainable tensor, already gathered (ZeRO-3) and on CPU,
        keyed by the training model's parameter names."""
        raise NotImplementedError

    def load_trainable(self, model: nn.Module, checkpoint_dir: str) -> None:
        """Restore trained weights from a checkpoint (resuming without DeepSpeed)."""
        raise NotImplementedError

    def method_state_files(self) -> list[str]:
        """Files of this method beyond the common layout (copied into every checkpoint)."""
        return []


def split_trainable(trainable: dict[str, torch.Tensor], adapter_key: str = "lora_") -> tuple[dict, dict]:
    """(adapter tensors, other trainables with names relative to the base model)."""
    adapter = {k: v for k, v in trainable.items() if adapter_key in k}
    others = {k.removeprefix(PEFT_PREFIX): v for k, v in trainable.items() if adapter_key not in k}
    return adapter, others


def save_non_lora(output_dir: str, others: dict[str, torch.Tensor]) -> None:
    """Always written (possibly empty), so a reader never has to guess whether the projector was trained."""
    save_file({k: v.contiguous() for k, v in others.items()}, str(Path(output_dir) / NON_LORA_FILE))


def load_non_lora(model: nn.Module, directory: str) -> list[str]:
    """Load `non_lora_trainables.safetensors` into `model` (a base model or a peft wrapper); returns the names."""
    path = Path(directory) / NON_LORA_FILE
    if not path.is_file():
        return []
    weights = load_file(str(path))
    params = dict(model.named_parameters())
    loaded = []
    for name, value in weights.items():
        target = params.get(name) if name in params else params.get(PEFT_PREFIX + name)
        if target is None:
            raise KeyError(f"{path}: tensor {name!r} matches no parameter of the model")
        with torch.no_grad():
            target.copy_(value.to(target.dtype))
        loaded.append(name)
    return loaded
