"""`--method thanora`: glue between the training run and the model-agnostic `llava_thanora.thanora` package.

Order of work (METHOD.md): preview statistics from each task's own training samples → rank allocation → blocks
→ an ordinary peft LoRA whose base weights are the residual. During training the loss is
`lm_loss + lambda * spr_penalty`, both logged. Resuming rebuilds the residual from the saved initial blocks
instead of previewing again.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..thanora import ThanoRAConfig, apply_thanora, load_thanora, save_thanora
from .base import BuildContext, Method, load_non_lora, save_non_lora, split_trainable
from .lora import lora_config


def thanora_config(args, seed: int) -> ThanoRAConfig:
    """The `--thanora_*` flags as a ThanoRAConfig."""
    return ThanoRAConfig(
        tau=args.thanora_tau, lam=args.thanora_lambda, gamma=args.thanora_gamma, r_coop=args.thanora_r_coop,
        r_min=args.thanora_r_min, preview_samples=args.thanora_preview_samples, penalty_side=args.thanora_penalty,
        init=args.thanora_init, allocation=args.thanora_allocation, cov_budget_mb=args.thanora_cov_budget_mb,
        seed=seed,
    )


class TaskBatches:
    """Re-iterable collated batches of one task's first `limit` training samples (this rank's share of them).

    Re-iterable because covariances may be collected in several passes when they do not fit in memory at once.
    Labels are dropped: the preview only needs the inputs each layer sees.
    """

    def __init__(self, dataset, indices: list[int], collator, batch_size: int):
        self.dataset, self.indices, self.collator, self.batch_size = dataset, indices, collator, batch_size

    def __iter__(self):
        for start in range(0, len(self.indices), self.batch_size):
            batch = self.collator([self.dataset[i] for i in self.indices[start: start + self.batch_size]])
            batch.pop("labels", None)
            yield batch


def preview_data(ctx: BuildContext, samples_per_task: int, batch_size: int) -> dict[str, TaskBatches]:
    """Per task, its first N training samples in dataset order, split across ranks (covariances are summed)."""
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    out = {}
    for task, indices in ctx.train_dataset.task_indices().items():
        mine = indices[:samples_per_task][rank::world]
        out[task] = TaskBatches(ctx.train_dataset, mine, ctx.collator, batch_size)
    return out


class ThanoRAMethod(Method):
    name = "thanora"

    def __init__(self):
        self.state = None

    def build(self, model: nn.Module, ctx: BuildContext) -> nn.Module:
        args = ctx.method_args["thanora"]
        if ctx.resume_dir and os.path.isfile(os.path.join(ctx.resume_dir, "thanora.json")):
            peft_model, self.state = load_thanora(model, ctx.resume_dir)
            return peft_model
        if not any(hasattr(p, "ds_id") for p in model.parameters()):
            model.to(ctx.training_args.device)  # preview where training will run (the GPU), not on the host
        batches = preview_data(ctx, args.thanora_preview_samples, args.thanora_preview_batch_size)
        config = thanora_config(args, ctx.training_args.seed)
        peft_model, self.state = apply_thanora(model, lora_config(ctx), config, batches)
        return peft_model

    def start_step(self, model: nn.Module) -> None:
        self.state.start_step()

    def extra_losses(self, model: nn.Module) -> dict[str, tuple[float, torch.Tensor]]:
        return {"spr_penalty": (self.state.config.lam, self.state.finish_step(model.training))}

    def save(self, model, output_dir: str, trainable: dict[str, torch.Tensor]) -> None:
        _, others = split_trainable(trainable)
        save_thanora(output_dir, model, self.state, state_dict=trainable)
        save_non_lora(output_dir, others)

    def load_trainable(self, model, checkpoint_dir: str) -> None:
        # `build` already restored the adapter from the checkpoint (it needs the residual base first).
        load_non_lora(model, checkpoint_dir)
