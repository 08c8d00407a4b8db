"""`--method thanora`: glue between the training run and the model-agnostic `llava_thanora.thanora` package.

Order of work (METHOD.md): preview statistics from each task's own training samples → rank allocation → blocks
→ an ordinary peft LoRA whose base weights are the residual. During training the loss is
`lm_loss + lambda * spr_penalty`, both logged. Resuming rebuilds the residual from the saved initial blocks
instead of previewing again.

The flags are ThanoRAConfig's own fields (`--thanora_<field>`, derived by `llava_thanora.flags.arguments_from`)
plus the preview batch size, which only this glue uses.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..data.preview import task_previews
from ..distributed import is_zero3, rank, world_size
from ..flags import arguments_from, config_from, documented
from ..thanora import ThanoRAConfig, apply_thanora, load_thanora, plot_rank_allocation, save_thanora
from .base import BuildContext, Method, load_non_lora, save_non_lora, split_trainable
from .lora import lora_config

PLOT_FILE = "rank_allocation.png"


@documented
class _PreviewArguments:
    thanora_preview_batch_size: int = 4
    """Batch size of the preview forward passes."""

    def __post_init__(self) -> None:
        if self.thanora_preview_batch_size < 1:
            raise ValueError(f"--thanora_preview_batch_size must be >= 1, got {self.thanora_preview_batch_size}")


ThanoRAArguments = arguments_from(
    ThanoRAConfig, "thanora_", "ThanoRAArguments", exclude=("seed",), base=_PreviewArguments,
    doc="The --thanora_* flags: every ThanoRAConfig field (its seed is --seed) and the preview batch size.")


class ThanoRAMethod(Method):
    name = "thanora"
    arguments = ThanoRAArguments

    def __init__(self, args=None):
        super().__init__(args)
        self.state = None

    def build(self, model: nn.Module, ctx: BuildContext) -> nn.Module:
        if ctx.resume_dir and os.path.isfile(os.path.join(ctx.resume_dir, "thanora.json")):
            peft_model, self.state = load_thanora(model, ctx.resume_dir)
            return peft_model
        if not is_zero3(model):
            model.to(ctx.training_args.device)  # preview where training will run (the GPU), not on the host
        config = config_from(self.args, ThanoRAConfig, seed=ctx.training_args.seed)
        batches = task_previews(ctx.train_dataset, ctx.collator, config.preview_samples,
                                self.args.thanora_preview_batch_size, rank(), world_size())
        peft_model, self.state = apply_thanora(model, lora_config(ctx), config, batches)
        return peft_model

    def start_step(self, model: nn.Module) -> None:
        self.state.start_step()

    def extra_losses(self, model: nn.Module) -> dict[str, tuple[float, torch.Tensor]]:
        return {"spr_penalty": (self.state.config.lam, self.state.finish_step(model.training))}

    def save(self, model, output_dir: str, trainable: dict[str, torch.Tensor]) -> None:
        _, others = split_trainable(trainable)
        save_thanora(output_dir, model, self.state, state_dict=trainable)
        plot_rank_allocation(self.state, os.path.join(output_dir, PLOT_FILE))
        save_non_lora(output_dir, others)

    def load_trainable(self, model, checkpoint_dir: str) -> None:
        # `build` already restored the adapter from the checkpoint (it needs the residual base first).
        load_non_lora(model, checkpoint_dir)
