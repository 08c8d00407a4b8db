"""`--method pissa` and `--method corda`: a LoRA whose factors start from a decomposition of the base weights,
using peft's own initializations (`init_lora_weights="pissa" | "pissa_niter_K" | "corda"`).

Both move the top-r part of each adapted weight into the adapter: W becomes the residual `W_res = W - s B0 A0`,
so the model computes the same function at step 0. An adapter trained on `W_res` is not an adapter for the
ORIGINAL base, so the output dir holds:

    initial_adapter/                  the initial factors (B0, A0) as a plain peft LoRA, written at build time
    adapter_config.json, adapter_model.safetensors
                                      the trained update relative to the ORIGINAL base, peft's conversion:
                                      dW = s (B A - B0 A0) = s [B, -B0] [A; A0], a rank-2r LoRA with alpha 2*alpha
    non_lora_trainables.safetensors   as every method

so `PeftModel.from_pretrained(original_base, output_dir)` computes the trained function. The conversion is the
one of peft's `save_pretrained(..., path_initial_model_for_weight_conversion=...)` (`subtract_mutated_init`),
done here on the gathered tensors the trainer passes to `save`: peft's call instead loads the initial adapter
into the live training model as a second adapter at every checkpoint, and cannot take a gathered state dict.
The test checks that both give the same adapter.

Resuming never repeats the SVD or the CorDA preview: a saved adapter's second half is exactly (A0, -B0), so
`build` restores the initial factors from the checkpoint and recomputes `W_res = W - (s B0) A0` with peft's own
expression, bit-identical to the first run on the same device.

CorDA's preview (the covariance of each adapted layer's inputs) runs on the same samples as ThanoRA's: the first
`--thanora_preview_samples` training samples of each task, in dataset order, one sample per forward (peft's hook
expects a batch of one). Every rank previews all of them, so every rank computes the same initialization.

DeepSpeed ZeRO-3 is refused with a message: both inits need every full base weight at build time, where ZeRO-3
holds only a slice. The base is frozen, so ZeRO-2 (`zero2.json`) costs only the unsharded frozen weights.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from peft.tuners.lora import Linear as LoraLinear
from safetensors.torch import load_file, save_file
from torch import nn

from .base import BuildContext, save_non_lora, split_trainable
from .lora import LoRAMethod, lora_config, restore_adapter

INITIAL_DIR = "initial_adapter"
ADAPTER_FILE = "adapter_model.safetensors"


def to_original_base(trained: dict[str, torch.Tensor], initial: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """peft's PiSSA/CorDA -> LoRA conversion, key by key (saved-adapter keys, no adapter name):
    `A' = [A; A0]`, `B' = [B, -B0]`, so that `B'A' = BA - B0A0`. Float32, exact."""
    out = {}
    for key, value in trained.items():
        if key not in initial:
            raise KeyError(f"adapter tensor {key} has no initial value in {INITIAL_DIR}/")
        if ".lora_A." in key:
            out[key] = torch.cat([value.float(), initial[key].float()], dim=0)
        elif ".lora_B." in key:
            out[key] = torch.cat([value.float(), -initial[key].float()], dim=1)
        else:
            raise ValueError(f"{key}: only lora_A / lora_B tensors can be converted (no DoRA, no bias)")
    return out


def split_converted(converted: dict[str, torch.Tensor], r: int) -> tuple[dict, dict]:
    """Inverse of `to_original_base`: (trained factors, initial factors) of a saved rank-2r adapter."""
    trained, initial = {}, {}
    for key, value in converted.items():
        dim = 0 if ".lora_A." in key else 1
        if value.shape[dim] != 2 * r:
            raise ValueError(f"{key}: rank {value.shape[dim]} is not 2 x --lora_r ({2 * r}); was it trained with "
                             f"another --lora_r?")
        first, second = value.split(r, dim=dim)
        trained[key], initial[key] = first.clone(), (second if dim == 0 else -second).clone()
    return trained, initial


def plain_config(config: LoraConfig) -> LoraConfig:
    """A copy that loads as a plain LoRA: loading a saved adapter must not decompose the weights again."""
    config = copy.deepcopy(config)
    config.init_lora_weights, config.corda_config, config.inference_mode = True, None, True
    return config


def _refuse_zero3(model: nn.Module, name: str) -> None:
    if any(hasattr(p, "ds_id") for p in model.parameters()):
        raise ValueError(f"--method {name} decomposes every full base weight at build time, but DeepSpeed ZeRO-3 "
                         f"holds only a slice of each; use --deepspeed zero2.json (the base is frozen, so ZeRO-2 "
                         f"shards everything that trains)")


class _ResidualInitMethod(LoRAMethod):
    """Shared by PiSSA and CorDA: residual-base bookkeeping, conversion at save, resume without re-init."""

    def __init__(self):
        self.initial_path: Path | None = None
        self.r: int | None = None

    def initialize(self, model: nn.Module, ctx: BuildContext) -> nn.Module:
        """The peft model with the method's own init (subclasses)."""
        raise NotImplementedError

    def build(self, model: nn.Module, ctx: BuildContext) -> nn.Module:
        _refuse_zero3(model, self.name)
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
        _, initial = split_converted(load_file(str(path)), self.r)
        peft_model = get_peft_model(model, lora_config(ctx))  # plain init, overwritten below
        result = set_peft_model_state_dict(peft_model, initial)
        if result.unexpected_keys:
            raise KeyError(f"{path}: adapter tensors that match no layer: {result.unexpected_keys[:5]}")
        with torch.no_grad():
            for module in peft_model.modules():
                if isinstance(module, LoraLinear):
                    a0, b0 = module.lora_A["default"].weight.float(), module.lora_B["default"].weight.float()
                    weight = module.get_base_layer().weight
                    # the expression of peft's pissa_init / corda_init, so the residual is bit-identical
                    weight.data = (weight.data.float() - module.scaling["default"] * b0 @ a0).to(weight.dtype)
        return peft_model, initial

    def save(self, model, output_dir: str, trainable: dict[str, torch.Tensor]) -> None:
        adapter, others = split_trainable(trainable)
        trained = get_peft_model_state_dict(model, state_dict=adapter)  # saved-adapter keys
        initial = load_file(str(self.initial_path / ADAPTER_FILE))
        config = plain_config(model.peft_config["default"])
        config.r, config.lora_alpha = 2 * config.r, 2 * config.lora_alpha  # same scaling s = alpha / r
        if config.base_model_name_or_path is None:
            config.base_model_name_or_path = getattr(model.base_model.model, "name_or_path", None)
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        config.save_pretrained(output_dir)
        save_file({k: v.contiguous() for k, v in to_original_base(trained, initial).items()},
                  str(Path(output_dir) / ADAPTER_FILE), metadata={"format": "pt"})
        save_non_lora(output_dir, others)

    def load_trainable(self, model, checkpoint_dir: str) -> None:
        trained, _ = split_converted(load_file(str(Path(checkpoint_dir) / ADAPTER_FILE)), self.r)
        restore_adapter(model, trained, checkpoint_dir)


class PiSSAMethod(_ResidualInitMethod):
    """PiSSA (Meng et al. 2024): A0, B0 from the top-r singular triplets of W itself."""

    name = "pissa"

    def initialize(self, model: nn.Module, ctx: BuildContext) -> nn.Module:
        niter = ctx.method_args["baselines"].pissa_niter
        if niter < 0:
            raise ValueError(f"--pissa_niter must be >= 0 (0 = exact SVD), got {niter}")
        return get_peft_model(model, lora_config(ctx, init_lora_weights=f"pissa_niter_{niter}" if niter else "pissa"))


class CorDAMethod(_ResidualInitMethod):
    """CorDA (Yang et al. 2024): A0, B0 from the SVD of W C, C the covariance of the layer's inputs on preview
    samples of the training tasks (instruction-previewed mode by default)."""

    name = "corda"

    def initialize(self, model: nn.Module, ctx: BuildContext) -> nn.Module:
        from peft.tuners.lora.config import CordaConfig
        from peft.tuners.lora.corda import preprocess_corda

        from .thanora import TaskBatches

        kind = ctx.method_args["baselines"].corda_method
        if kind not in ("ipm", "kpm"):
            raise ValueError(f"--corda_method must be ipm or kpm, got {kind!r}")
        if ctx.train_dataset is None or ctx.collator is None:
            raise ValueError("--method corda needs the training data for its preview")
        n = ctx.method_args["thanora"].thanora_preview_samples
        previews = [TaskBatches(ctx.train_dataset, indices[:n], ctx.collator, batch_size=1)
                    for indices in ctx.train_dataset.task_indices().values()]
        device = ctx.training_args.device

        def run_model() -> None:
            for batches in previews:
                for batch in batches:
                    model(**{k: v.to(device) for k, v in batch.items()})

        config = lora_config(ctx, init_lora_weights="corda", corda_config=CordaConfig(corda_method=kind))
        preprocess_corda(model, config, run_model=run_model)
        return get_peft_model(model, config)


__all__ = ["CorDAMethod", "PiSSAMethod", "split_converted", "to_original_base"]
