"""What a training method is: its flags, how it wraps the model, what it adds to the loss, how it saves and resumes.

A method is one file plus one line in `registry.py`. Its flags are a typed dataclass (`llava_thanora.flags.
documented`: a docstring per field) named in the class attribute `arguments`; `train.py` parses them with the
other flags and hands the method its own instance (`Method(args)`), so `train.py --help` lists them and nothing
reads them back by string. Flags of a method that is not selected are an error (they would have no effect).

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

from ..flags import FlagOwner
from ..residual import PEFT_PREFIX

NON_LORA_FILE = "non_lora_trainables.safetensors"


@dataclass
class BuildContext:
    """What a method may use to build its trainable model."""

    model_args: Any
    """`ModelArguments`: the base, the LoRA rank / alpha / dropout / targets shared by the LoRA family."""
    training_args: Any
    """`TrainingArguments` (device, output_dir, seed, should_save)."""
    train_dataset: Any = None
    collator: Any = None
    target_modules: list[str] | None = None
    resume_dir: str | None = None
    """A checkpoint to restore method state from instead of running data-driven initialization again."""
    processor: Any = None
    """The checkpoint's processor (a preview under ZeRO-3 runs the family's vision path on a blank image with it)."""


class Method(FlagOwner):
    """Base class: subclasses implement `build` and `save`, and override the hooks they need. `self.args` is the
    instance of `arguments` (the method's own flags), or None."""

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
