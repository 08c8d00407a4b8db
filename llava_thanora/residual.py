"""Residual bases and portable adapters, shared by every method whose LoRA starts from nonzero factors.

PiSSA, CorDA and ThanoRA's `context` init start training from factors (A0, B0) with `s * B0 A0 != 0`. To leave
the model's function unchanged at step 0 the frozen base becomes the residual `W_res = W - s * B0 A0`
(`subtract_initial`). After training, `W_res + s * B A = W + s * (B A - B0 A0)`, so the adapter that reproduces
the trained model on the ORIGINAL base is the rank-2r LoRA `[B, -B0] [A; A0]` (`to_portable`), with the same
scaling s: alpha doubles for plain LoRA (s = alpha / r) and grows by sqrt(2) for rsLoRA (s = alpha / sqrt(r))
(`portable_config`), as peft's own PiSSA/CorDA conversion does. `split_portable` inverts it for resuming.

Keys are those of a saved peft adapter (`PEFT_PREFIX` + module + `.lora_A.weight`, no adapter name).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel
from peft.tuners.lora import Linear as LoraLinear
from safetensors.torch import save_file
from torch import nn

from .distributed import gathered

PEFT_PREFIX = "base_model.model."
ADAPTER_FILE = "adapter_model.safetensors"


def lora_key(module: str, factor: str) -> str:
    """Saved-adapter key of factor "A" or "B" of `module` (a name in the base model)."""
    return f"{PEFT_PREFIX}{module}.lora_{factor}.weight"


def lora_layers(peft_model: nn.Module, adapter_name: str = "default") -> dict[str, LoraLinear]:
    """peft LoRA Linear layers carrying `adapter_name`, keyed by their name in the base model."""
    root = peft_model.base_model.model if isinstance(peft_model, PeftModel) else peft_model
    return {name: module for name, module in root.named_modules()
            if isinstance(module, LoraLinear) and adapter_name in module.lora_A}


def lora_scaling(config: LoraConfig) -> float:
    """peft's scaling of a rank-r adapter: alpha / r, or alpha / sqrt(r) with rsLoRA."""
    return config.lora_alpha / (math.sqrt(config.r) if config.use_rslora else config.r)


@torch.no_grad()
def subtract_initial(weight: nn.Parameter, a0: torch.Tensor, b0: torch.Tensor, scaling: float) -> None:
    """`W <- W - (s * B0) @ A0` in float32, in place; peft's own expression (pissa_init / corda_init), so a resumed
    run rebuilds a bit-identical residual. Under ZeRO-3 rank 0's result is re-partitioned to every rank."""
    with gathered([weight], modifier_rank=0):
        b0 = b0.to(weight.device, torch.float32)
        a0 = a0.to(weight.device, torch.float32)
        weight.data.copy_((weight.data.float() - (scaling * b0) @ a0).to(weight.dtype))


def portable_config(config: LoraConfig) -> LoraConfig:
    """The config of `[B, -B0] [A; A0]`: rank 2r with the same scaling, loading as a plain LoRA (no re-init)."""
    portable = copy.deepcopy(config)
    portable.r = 2 * config.r
    portable.lora_alpha = config.lora_alpha * (math.sqrt(2) if config.use_rslora else 2)
    if config.rank_pattern or config.alpha_pattern:
        raise ValueError("a portable rank-2r adapter needs one rank for every layer (no rank_pattern/alpha_pattern)")
    portable.init_lora_weights, portable.corda_config, portable.inference_mode = True, None, True
    return portable


def to_portable(trained: dict[str, torch.Tensor], initial: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`A' = [A; A0]`, `B' = [B, -B0]` key by key, so that `B'A' = BA - B0A0`; float32, exact."""
    out = {}
    for key, value in trained.items():
        if key not in initial:
            raise KeyError(f"adapter tensor {key} has no initial value")
        if ".lora_A." in key:
            out[key] = torch.cat([value.float(), initial[key].float()], dim=0)
        elif ".lora_B." in key:
            out[key] = torch.cat([value.float(), -initial[key].float()], dim=1)
        else:
            raise ValueError(f"{key}: only lora_A / lora_B tensors have a portable form (no DoRA, no bias)")
    return out


def split_portable(portable: dict[str, torch.Tensor], r: int) -> tuple[dict, dict]:
    """Inverse of `to_portable`: (trained factors, initial factors) of a saved rank-2r adapter."""
    trained, initial = {}, {}
    for key, value in portable.items():
        dim = 0 if ".lora_A." in key else 1
        if value.shape[dim] != 2 * r:
            raise ValueError(f"{key}: rank {value.shape[dim]} is not 2 x --lora_r ({2 * r}); was it trained with "
                             f"another --lora_r?")
        first, second = value.split(r, dim=dim)
        trained[key], initial[key] = first.clone(), (second if dim == 0 else -second).clone()
    return trained, initial


def write_adapter(directory: str | Path, config: LoraConfig, tensors: dict[str, torch.Tensor]) -> None:
    """An ordinary peft adapter folder: `adapter_config.json` + `adapter_model.safetensors`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(directory))
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(directory / ADAPTER_FILE),
              metadata={"format": "pt"})
