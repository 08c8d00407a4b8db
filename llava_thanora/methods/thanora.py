"""`--method thanora`: glue between the training run and the model-agnostic `llava_thanora.thanora` package.

Order of work (METHOD.md): preview statistics from each task's own training samples → rank allocation → blocks
→ an ordinary peft LoRA whose base weights are the residual. During training the loss is
`lm_loss + lambda * spr_penalty`, both logged. Resuming rebuilds the residual from the saved initial blocks
instead of previewing again.

The flags are ThanoRAConfig's own fields (`--thanora_<field>`, derived by `llava_thanora.flags.arguments_from`)
plus the preview batch size, which only this glue uses.

Under ZeRO-3 the preview gathers parameters module by module, so every rank must run the same modules in the same
order: a batch without an image also runs LLaVA's vision path, on a blank image and with the preview's recording
paused (the Trainer does the same during training, `train/trainer.py`).
"""

from __future__ import annotations

import json
import os

import torch
from torch import nn

from ..data.preview import task_previews
from ..distributed import is_zero3, rank, world_size, zero_stage
from ..flags import arguments_from, config_from, documented
from ..thanora import ThanoRAConfig, apply_thanora, load_thanora, plot_rank_allocation, save_thanora
from ..thanora.covariance import Recording, default_forward
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


def check_checkpointing(training_args, lam: float) -> None:
    """Refuse reentrant gradient checkpointing under DeepSpeed ZeRO-2/3 with the penalty on: the penalty then adds a
    second, separate gradient to each LoRA weight per step, which ZeRO-2 rejects and ZeRO-3 crashes on."""
    if lam == 0 or not getattr(training_args, "gradient_checkpointing", False):
        return
    kwargs = training_args.gradient_checkpointing_kwargs or {}
    if isinstance(kwargs, str):
        kwargs = json.loads(kwargs)
    stage = zero_stage(getattr(training_args, "deepspeed", None))
    if kwargs.get("use_reentrant") and stage >= 2:
        raise ValueError(
            f"--method thanora with --thanora_lambda {lam} cannot train with --gradient_checkpointing_kwargs "
            f"'{{\"use_reentrant\": true}}' under DeepSpeed ZeRO-{stage}: the penalty and the reentrant recompute "
            "give each LoRA weight two separate gradients per step. Use non-reentrant checkpointing "
            "(--gradient_checkpointing_kwargs '{\"use_reentrant\": false}', the default), or --thanora_lambda 0.")


def lockstep_forward(model: nn.Module, batch: dict, recording: Recording) -> None:
    """The preview forward under ZeRO-3: a batch without `pixel_values` runs the vision tower and projector on a
    blank image right after the token embedding (where LLaVA runs them for an image batch), with recording paused,
    so that every rank calls the same modules in the same order whatever its data."""
    root = model.get_base_model() if hasattr(model, "get_base_model") else model
    vision = getattr(root, "get_image_features", None)
    if "pixel_values" in batch or vision is None:
        default_forward(model, batch, recording)
        return
    config = root.config

    def blank_vision(module, args, output):
        size = config.vision_config.image_size
        blank = torch.zeros(1, 3, size, size, dtype=output.dtype, device=output.device)
        with recording.paused():
            vision(pixel_values=blank, vision_feature_layer=config.vision_feature_layer,
                   vision_feature_select_strategy=config.vision_feature_select_strategy)

    handle = root.get_input_embeddings().register_forward_hook(blank_vision)
    try:
        default_forward(model, batch, recording)
    finally:
        handle.remove()


class ThanoRAMethod(Method):
    name = "thanora"
    arguments = ThanoRAArguments

    def __init__(self, args=None):
        super().__init__(args)
        self.state = None

    def build(self, model: nn.Module, ctx: BuildContext) -> nn.Module:
        check_checkpointing(ctx.training_args, self.args.thanora_lambda)
        if ctx.resume_dir and os.path.isfile(os.path.join(ctx.resume_dir, "thanora.json")):
            peft_model, self.state = load_thanora(model, ctx.resume_dir)
            return peft_model
        if not is_zero3(model):
            model.to(ctx.training_args.device)  # preview where training will run (the GPU), not on the host
        config = config_from(self.args, ThanoRAConfig, seed=ctx.training_args.seed)
        batches = task_previews(ctx.train_dataset, ctx.collator, config.preview_samples,
                                self.args.thanora_preview_batch_size, rank(), world_size())
        forward = lockstep_forward if is_zero3(model) else None
        peft_model, self.state = apply_thanora(model, lora_config(ctx), config, batches, forward=forward)
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
