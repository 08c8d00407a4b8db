"""The peft LoRA family: plain LoRA and DoRA (weight-decomposed LoRA, peft's `use_dora`)."""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
from safetensors.torch import load_file
from torch import nn

from .base import BuildContext, Method, load_non_lora, save_non_lora, split_trainable


def lora_config(ctx: BuildContext, **overrides) -> LoraConfig:
    a = ctx.model_args
    kwargs = dict(r=a.lora_r, lora_alpha=a.lora_alpha, lora_dropout=a.lora_dropout,
                  target_modules=ctx.target_modules, bias="none", use_rslora=a.use_rslora)
    kwargs.update(overrides)
    return LoraConfig(**kwargs)


def restore_adapter(model, weights: dict[str, torch.Tensor], checkpoint_dir: str) -> None:
    """Put saved adapter tensors (peft's saved names) and the checkpoint's other trainables back into `model`."""
    result = set_peft_model_state_dict(model, weights)
    if result.unexpected_keys:
        raise KeyError(f"{checkpoint_dir}: adapter tensors that match no layer: {result.unexpected_keys[:5]}")
    load_non_lora(model, checkpoint_dir)


class LoRAMethod(Method):
    name = "lora"

    def config(self, ctx: BuildContext) -> LoraConfig:
        return lora_config(ctx)

    def build(self, model: nn.Module, ctx: BuildContext) -> nn.Module:
        return get_peft_model(model, self.config(ctx))

    def save(self, model, output_dir: str, trainable: dict[str, torch.Tensor]) -> None:
        adapter, others = split_trainable(trainable)
        # peft filters the adapter tensors out of the given (already gathered) state dict and strips the adapter name.
        model.save_pretrained(output_dir, state_dict=adapter, safe_serialization=True)
        save_non_lora(output_dir, others)

    def load_trainable(self, model, checkpoint_dir: str) -> None:
        restore_adapter(model, load_file(str(Path(checkpoint_dir) / "adapter_model.safetensors")), checkpoint_dir)


class DoRAMethod(LoRAMethod):
    name = "dora"

    def config(self, ctx: BuildContext) -> LoraConfig:
        # DoRA's magnitude vectors are named `lora_magnitude_vector`, so the base saving keeps them with the adapter.
        return lora_config(ctx, use_dora=True)
