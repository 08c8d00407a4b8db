"""Load a LLaVA base model (transformers' native `LlavaForConditionalGeneration`) for training or inference.

llava-hf checkpoints (llava-1.5-7b-hf, 13b) load unchanged. The vision tower and the language model are frozen;
methods add trainable adapters, and the projector is trainable on request.
"""

from __future__ import annotations

import importlib.util
from types import MappingProxyType

import torch
from torch import nn

from .original import refuse_original

PROJECTOR_KEY = "multi_modal_projector"
DTYPES = MappingProxyType({"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16})
_EXCLUDED = ("vision_tower", PROJECTOR_KEY, "lm_head")


def default_attn_implementation() -> str:
    """flash_attention_2 only where it can run (CUDA and the package present); sdpa everywhere else."""
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


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
    from transformers import LlavaForConditionalGeneration

    from ..data.images import load_processor

    read_config(model_name_or_path)
    model = LlavaForConditionalGeneration.from_pretrained(
        model_name_or_path, dtype=dtype, attn_implementation=attn_implementation or default_attn_implementation(),
    )
    processor = load_processor(model_name_or_path)  # PIL image backend: LLaVA's pixels, torchvision or not
    model.requires_grad_(False)
    return model, processor


def projector_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if PROJECTOR_KEY in n]


def projector_module(model: nn.Module) -> nn.Module:
    """The multimodal projector (llava-hf's LlavaMultiModalProjector) of a model or of a peft wrapper around one."""
    found = [m for n, m in model.named_modules() if n.endswith(PROJECTOR_KEY)]
    if len(found) != 1:
        raise ValueError(f"expected one {PROJECTOR_KEY} module, found {len(found)}")
    return found[0]


def lora_target_names(model: nn.Module, suffixes: str | None = None) -> list[str]:
    """Full names of the Linear layers to adapt.

    Default: every nn.Linear of the language model, never the vision tower, the projector or lm_head. With
    `suffixes` ("q_proj,v_proj"), the Linear layers whose names end with one of them, anywhere in the model.
    """
    wanted = [s.strip() for s in suffixes.split(",") if s.strip()] if suffixes else None
    names = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        if wanted is None:
            if not any(part in name for part in _EXCLUDED):
                names.append(name)
        elif any(name == s or name.endswith("." + s) for s in wanted):
            names.append(name)
    if not names:
        raise ValueError(f"no nn.Linear layer matches --lora_target_modules {suffixes!r}")
    return names
