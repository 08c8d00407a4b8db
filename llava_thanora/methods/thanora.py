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
from ..model.families import family_of
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


def lockstep_forward(family, blank_inputs: dict | None):
    """The preview forward under ZeRO-3: a batch without `pixel_values` runs the family's vision path on a blank
    image right before the decoder (where the model runs it for an image batch; the trainer does the same), with
    recording paused, so that every rank gathers the same modules in the same order whatever its data.
    `blank_inputs` None (a text-only family): the plain forward."""

    def forward(model: nn.Module, batch: dict, recording: Recording) -> None:
        if "pixel_values" in batch or blank_inputs is None:
            default_forward(model, batch, recording)
            return
        root = model.get_base_model() if hasattr(model, "get_base_model") else model

        def blank_vision(module, args, kwargs):
            with recording.paused():
                family.blank_vision(root, blank_inputs)

        handle = family.decoder(root).register_forward_pre_hook(blank_vision, with_kwargs=True)
        try:
            default_forward(model, batch, recording)
        finally:
            handle.remove()

    return forward


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
                                self.args.thanora_preview_batch_size, ctx.training_args.seed, rank(), world_size())
        forward = None
        if is_zero3(model):
            family = family_of(model)
            blank = family.blank_image_inputs(ctx.processor) if family.image_token is not None else None
            forward = lockstep_forward(family, blank)
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
