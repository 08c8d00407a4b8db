"""`--method pissa` and `--method corda`: peft's data-driven LoRA inits, with residual bases and portable adapters.

Both start from factors (A0, B0) that already carry part of W, and peft replaces each adapted base weight by the
residual `W - s B0 A0`. The saved adapter is made portable by `llava_thanora.residual` (the same code ThanoRA's
context init uses): `[B, -B0] [A; A0]` at rank 2r with the same scaling (rsLoRA included), relative to the
ORIGINAL base, so `PeftModel.from_pretrained(original_base, out)` reproduces the trained model. The initial
factors are also kept in `initial_adapter/` (peft's `path_initial_model_for_weight_conversion` layout). The
conversion is done here rather than by peft's save_pretrained because under DeepSpeed the LoRA weights live in
the engine's checkpoint, and peft's conversion cannot take a gathered state dict. The tests check that both give
the same adapter.

Resuming never repeats the SVD or the CorDA preview: a saved adapter's second half is exactly (A0, -B0), so
`build` restores the initial factors from the checkpoint and recomputes `W_res = W - (s B0) A0` with peft's own
expression, bit-identical to the first run on the same device.

CorDA's preview (the covariance of each adapted layer's inputs) runs on `--corda_preview_samples` training
samples of each task drawn with `--seed` (`data.preview.preview_indices`), one sample per forward (peft's hook
expects a batch of one); at the default it is the same set ThanoRA previews. Every rank previews all of them, so every rank computes the
same initialization.

DeepSpeed ZeRO-3 is refused with a message: both inits need every full base weight at build time, where ZeRO-3
holds only a slice. The base is frozen, so ZeRO-2 (`zero2.json`) costs only the unsharded frozen weights.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Literal

import torch
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file, save_file
from torch import nn

from ..data.preview import TaskBatches, preview_indices
from ..distributed import is_zero3
from ..flags import documented
from ..residual import (
    ADAPTER_FILE, lora_layers, portable_config, split_portable, subtract_initial, to_portable, write_adapter,
)
from .base import BuildContext, save_non_lora, split_trainable
from .lora import LoRAMethod, lora_config, restore_adapter

INITIAL_DIR = "initial_adapter"


def plain_config(config: LoraConfig) -> LoraConfig:
    """A copy that loads as a plain LoRA: loading a saved adapter must not decompose the weights again."""
    config = copy.deepcopy(config)
    config.init_lora_weights, config.corda_config, config.inference_mode = True, None, True
    return config


class _ResidualInitMethod(LoRAMethod):
    """Shared by PiSSA and CorDA: residual-base bookkeeping, conversion at save, resume without re-init."""

    def __init__(self, args=None):
        super().__init__(args)
        self.initial_path: Path | None = None
        self.r: int | None = None

    def initialize(self, model: nn.Module, ctx: BuildContext) -> nn.Module:
        """The peft model with the method's own init (subclasses)."""
        raise NotImplementedError

    def build(self, model: nn.Module, ctx: BuildContext) -> nn.Module:
        if is_zero3(model):
            raise ValueError(f"--method {self.name} decomposes every full base weight at build time, but DeepSpeed "
                             f"ZeRO-3 holds only a slice of each; use --deepspeed zero2.json (the base is frozen, so "
                             f"ZeRO-2 shards everything that trains)")
        model.to(ctx.training_args.device)  # decompose where training runs (the GPU), not on the host
        self.r = ctx.model_args.lora_r
        self.initial_path = Path(ctx.training_args.output_dir) / INITIAL_DIR
        if ctx.resume_dir:
            peft_model, initial = self._rebuild(model, ctx)
        else:
            peft_model = self.initialize(model, ctx)
            initial = {k: v.detach().to("cpu", torch.float32) for k, v in get_peft_model_state_dict(peft_model).items()}
        if ctx.training_args.should_save:
            self.initial_path.mkdir(parents=True, exist_ok=True)
            save_file({k: v.contiguous() for k, v in initial.items()}, str(self.initial_path / ADAPTER_FILE))
            plain_config(peft_model.peft_config["default"]).save_pretrained(str(self.initial_path))
        return peft_model

    def _rebuild(self, model: nn.Module, ctx: BuildContext):
        """The initial state of the first run, from the checkpoint: factors (B0, A0) and residual base."""
        path = Path(ctx.resume_dir) / ADAPTER_FILE
        if not path.is_file():
            raise FileNotFoundError(f"--method {self.name}: cannot resume from {ctx.resume_dir}: no {ADAPTER_FILE}")
        _, initial = split_portable(load_file(str(path)), self.r)
        peft_model = get_peft_model(model, lora_config(ctx))  # plain init, overwritten below
        result = set_peft_model_state_dict(peft_model, initial)
        if result.unexpected_keys:
            raise KeyError(f"{path}: adapter tensors that match no layer: {result.unexpected_keys[:5]}")
        for module in lora_layers(peft_model).values():
            subtract_initial(module.get_base_layer().weight, module.lora_A["default"].weight.float(),
                             module.lora_B["default"].weight.float(), module.scaling["default"])
        return peft_model, initial

    def save(self, model, output_dir: str, trainable: dict[str, torch.Tensor]) -> None:
        adapter, others = split_trainable(trainable)
        trained = get_peft_model_state_dict(model, state_dict=adapter)  # saved-adapter keys
        initial = load_file(str(self.initial_path / ADAPTER_FILE))
        config = portable_config(model.peft_config["default"])
        if config.base_model_name_or_path is None:
            config.base_model_name_or_path = getattr(model.base_model.model, "name_or_path", None)
        write_adapter(output_dir, config, to_portable(trained, initial))
        save_non_lora(output_dir, others)

    def load_trainable(self, model, checkpoint_dir: str) -> None:
        trained, _ = split_portable(load_file(str(Path(checkpoint_dir) / ADAPTER_FILE)), self.r)
        restore_adapter(model, trained, checkpoint_dir)


@documented
class PiSSAArguments:
    pissa_niter: int = 0
    """--method pissa: 0 = exact SVD of every adapted weight; K > 0 = peft's randomized SVD with K subspace
    iterations (pissa_niter_K, much faster on large models)."""

    def __post_init__(self) -> None:
        if self.pissa_niter < 0:
            raise ValueError(f"--pissa_niter must be >= 0 (0 = exact SVD), got {self.pissa_niter}")


class PiSSAMethod(_ResidualInitMethod):
    """PiSSA (Meng et al. 2024): A0, B0 from the top-r singular triplets of W itself."""

    name = "pissa"
    arguments = PiSSAArguments

    def initialize(self, model: nn.Module, ctx: BuildContext) -> nn.Module:
        niter = self.args.pissa_niter
        return get_peft_model(model, lora_config(ctx, init_lora_weights=f"pissa_niter_{niter}" if niter else "pissa"))


@documented
class CorDAArguments:
    corda_method: Literal["ipm", "kpm"] = "ipm"
    """--method corda: ipm (instruction-previewed: the top context-oriented components) or kpm
    (knowledge-preserved: the bottom ones)."""
    corda_preview_samples: int = 500
    """--method corda: training samples of each task (the first ones, in dataset order) whose layer inputs form
    the covariance; the default equals --thanora_preview_samples' so both previews see the same samples."""

    def __post_init__(self) -> None:
        if self.corda_preview_samples < 1:
            raise ValueError(f"--corda_preview_samples must be >= 1, got {self.corda_preview_samples}")


class CorDAMethod(_ResidualInitMethod):
    """CorDA (Yang et al. 2024): A0, B0 from the SVD of W C, C the covariance of the layer's inputs on preview
    samples of the training tasks (instruction-previewed mode by default)."""

    name = "corda"
    arguments = CorDAArguments

    def initialize(self, model: nn.Module, ctx: BuildContext) -> nn.Module:
        from peft.tuners.lora.config import CordaConfig
        from peft.tuners.lora.corda import preprocess_corda

        if ctx.train_dataset is None or ctx.collator is None:
            raise ValueError("--method corda needs the training data for its preview")
        n = self.args.corda_preview_samples
        drawn = preview_indices(ctx.train_dataset, n, ctx.training_args.seed)
        previews = [TaskBatches(ctx.train_dataset, indices, ctx.collator, batch_size=1) for indices in drawn.values()]
        device = ctx.training_args.device

        def run_model() -> None:
            for batches in previews:
                for batch in batches:
                    model(**{k: v.to(device) for k, v in batch.items()})

        config = lora_config(ctx, init_lora_weights="corda", corda_config=CordaConfig(corda_method=self.args.corda_method))
        preprocess_corda(model, config, run_model=run_model)
        return get_peft_model(model, config)


__all__ = ["CorDAArguments", "CorDAMethod", "PiSSAArguments", "PiSSAMethod", "plain_config"]
