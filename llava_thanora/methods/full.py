"""LLaVA's pre-training stages as methods: `projector` (stage 1: only the projector learns) and `full` (stage 2:
language model and projector learn, vision tower frozen). Both save a complete HF checkpoint, which later runs use
as `--model_name_or_path`."""

from __future__ import annotations

import torch
from torch import nn

from ..distributed import gathered
from ..flags import documented
from ..model.builder import projector_parameters
from ..model.families import family_of
from .base import BuildContext, Method


class ProjectorMethod(Method):
    name = "projector"

    def build(self, model: nn.Module, ctx: BuildContext) -> nn.Module:
        for _, p in projector_parameters(model):
            p.requires_grad_(True)
        return model

    def save(self, model, output_dir: str, trainable: dict[str, torch.Tensor]) -> None:
        with gathered(model.parameters()):  # under ZeRO-3 the frozen weights are partitioned too
            state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        model.save_pretrained(output_dir, state_dict=state)

    def load_trainable(self, model, checkpoint_dir: str) -> None:
        """Copy the trained parameters back from the checkpoint's (possibly sharded) safetensors."""
        from pathlib import Path

        from safetensors import safe_open

        wanted = {n: p for n, p in model.named_parameters() if p.requires_grad}
        for file in sorted(Path(checkpoint_dir).glob("*.safetensors")):
            with safe_open(str(file), "pt") as f:
                for key in f.keys():
                    if key in wanted:
                        with torch.no_grad():
                            wanted.pop(key).copy_(f.get_tensor(key))
        if wanted:
            raise KeyError(f"{checkpoint_dir}: no saved value for {sorted(wanted)[:3]}")


@documented
class FullArguments:
    tune_vision_tower: bool = False
    """Train the vision tower too (for a base whose tower is random, like the tiny demo base)."""


class FullMethod(ProjectorMethod):
    name = "full"
    arguments = FullArguments

    def build(self, model: nn.Module, ctx: BuildContext) -> nn.Module:
        family = family_of(model)
        train_vision = self.args.tune_vision_tower
        if train_vision and family.image_token is None:
            raise ValueError(f"--tune_vision_tower: {family.name} models have no vision tower")
        for name, p in model.named_parameters():
            p.requires_grad_(train_vision or not family.is_vision(name))
        return model
