"""Load a base model for training or inference through its family (`model/families/`), chosen from config.json.

llava-hf checkpoints (llava-1.5, llava-v1.6 / NeXT, OneVision), Qwen2-VL / Qwen2.5-VL and text-only causal LMs load
with their native transformers classes. Everything is frozen; methods add trainable adapters, and the projector
trains as LLaVA trains it (`train/main.py`). Module roles (LoRA targets, projector, vision tower) are the family's.
"""

from __future__ import annotations

from types import MappingProxyType

import torch
from torch import nn

from .families import family_of
from .original import refuse_original

DTYPES = MappingProxyType({"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16})


def resolve_dtype(name: str, bf16: bool = False, fp16: bool = False) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if bf16 else torch.float16 if fp16 else torch.float32
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"--torch_dtype must be auto, float32, bfloat16 or float16, got {name!r}") from None


def read_config(model_name_or_path: str) -> dict:
    """The checkpoint's config.json as a dict; an original-layout LLaVA checkpoint is refused here, with the
    converter's command, before anything would parse it as a default llava-hf model with random weights."""
    from transformers import PretrainedConfig

    config, _ = PretrainedConfig.get_config_dict(model_name_or_path)
    refuse_original(model_name_or_path, config)
    return config


def load_base(model_name_or_path: str, dtype: torch.dtype = torch.float32, attn_implementation: str | None = None):
    """(model, processor) from a checkpoint, everything frozen. Remote code is never trusted."""
    family = family_of(read_config(model_name_or_path))
    model = family.load_model(model_name_or_path, dtype, attn_implementation)
    processor = family.load_processor(model_name_or_path)  # images: PIL backend, LLaVA's pixels, torchvision or not
    model.requires_grad_(False)
    return model, processor


def projector_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The vision-language projector's parameters (the family's; none for a text-only model)."""
    return family_of(model).projector_parameters(model)


def projector_module(model: nn.Module) -> nn.Module:
    """The projector module of a model or of a peft wrapper around one (the family's first projector prefix)."""
    family = family_of(model)
    if not family.has_projector:
        raise ValueError(f"{family.name} models have no vision-language projector")
    key = family.projector_prefixes[0]
    found = [m for n, m in model.named_modules() if n.endswith(key) and isinstance(m, nn.Module)]
    if len(found) != 1:
        raise ValueError(f"expected one {key} module, found {len(found)}")
    return found[0]


def lora_target_names(model: nn.Module, suffixes: str | None = None) -> list[str]:
    """Full names of the Linear layers to adapt.

    Default: every nn.Linear of the language model (the family says which modules that is: never the vision
    tower, the projector or lm_head). With `suffixes` ("q_proj,v_proj"), the Linear layers whose names end with
    one of them, anywhere in the model.
    """
    wanted = [s.strip() for s in suffixes.split(",") if s.strip()] if suffixes else None
    if wanted is None:
        names = family_of(model).lora_target_names(model)
    else:
        names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)
                 and any(name == s or name.endswith("." + s) for s in wanted)]
    if not names:
        raise ValueError(f"no nn.Linear layer matches --lora_target_modules {suffixes!r}")
    return names
