"""What this project knows about haotian-liu/LLaVA's own checkpoint layout, next to llava-hf's.

An original LLaVA-1.5 checkpoint (`liuhaotian/llava-v1.5-7b`) is a `LlavaLlamaForCausalLM`: Llama weights under
`model.layers.*` / `model.embed_tokens` / `model.norm` / `lm_head`, the projector as `model.mm_projector.0/2.*`
(an `nn.Sequential` of Linear, GELU, Linear), LLaVA's `mm_*` keys in config.json, and no vision tower weights (LLaVA
loads CLIP from `mm_vision_tower` by name). llava-hf's `LlavaForConditionalGeneration` holds the same function
under other names (`model.language_model.*`, `model.multi_modal_projector.linear_1/2.*`, `model.vision_tower.*`).

Used by the loader (a clear error naming the converter), `scripts/convert_llava_checkpoint.py`,
`scripts/merge_lora_weights.py` (LoRA folders that LLaVA wrote), `--pretrain_mm_mlp_adapter`, and the check of
LLaVA's architecture flags against a checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import torch

ORIGINAL_ARCHITECTURES = frozenset({"LlavaLlamaForCausalLM", "LlavaMistralForCausalLM", "LlavaMptForCausalLM"})
CONVERTER = "scripts/convert_llava_checkpoint.py"

# Original parameter-name prefixes -> the names of transformers' LlavaForConditionalGeneration (longest first).
_PREFIXES = (
    ("model.vision_tower.vision_tower.vision_model.", "model.vision_tower."),
    ("model.mm_projector.0.", "model.multi_modal_projector.linear_1."),
    ("model.mm_projector.2.", "model.multi_modal_projector.linear_2."),
    ("model.embed_tokens.", "model.language_model.embed_tokens."),
    ("model.layers.", "model.language_model.layers."),
    ("model.norm.", "model.language_model.norm."),
    ("lm_head.", "lm_head."),
)
PEFT_PREFIX = "base_model.model."
LANGUAGE_MODEL = "model.language_model."  # where llava-hf keeps the modules LLaVA's LoRA suffixes named
# LLaVA's --mm_vision_select_feature -> llava-hf's vision_feature_select_strategy
SELECT_FEATURE = MappingProxyType({"patch": "default", "cls_patch": "full"})


class OriginalLayoutError(ValueError):
    """A checkpoint or file in haotian-liu/LLaVA's layout where a llava-hf one is needed."""


def is_original_config(config: dict) -> bool:
    """Whether a config.json (as a dict) describes an original-layout LLaVA model rather than llava-hf's."""
    return bool(ORIGINAL_ARCHITECTURES & set(config.get("architectures") or [])) or "mm_vision_tower" in config


def refuse_original(path: str, config: dict) -> None:
    """Raise `OriginalLayoutError` naming the converter when `config` is an original-layout LLaVA model's."""
    if is_original_config(config):
        arch = ", ".join(config.get("architectures") or ["mm_* config keys"])
        raise OriginalLayoutError(
            f"{path} is an original haotian-liu/LLaVA checkpoint ({arch}, weights under model.mm_projector / "
            f"model.layers), not a llava-hf one. Convert it once: python {CONVERTER} --model-path {path} "
            f"--vision-tower CLIP_DIR --save-path OUT (CLIP_DIR: a local {config.get('mm_vision_tower', 'CLIP')} "
            f"folder), then use OUT")


def hf_name(original: str) -> str | None:
    """The llava-hf parameter name of an original-layout one (also inside peft's `base_model.model.` prefix), or
    None when it has no counterpart."""
    peft = original.startswith(PEFT_PREFIX)
    name = original.removeprefix(PEFT_PREFIX) if peft else original
    for old, new in _PREFIXES:
        if name.startswith(old):
            return (PEFT_PREFIX if peft else "") + new + name[len(old):]
    return None


def is_original_key_layout(keys) -> bool:
    """Whether parameter names (plain or peft-prefixed) are in the original layout: decoder layers directly under
    `model.` and no llava-hf `language_model`."""
    names = [k.removeprefix(PEFT_PREFIX) for k in keys]
    return (any(n.startswith(("model.layers.", "model.mm_projector.")) for n in names)
            and not any("language_model" in n for n in names))


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """A .safetensors file, or a torch .bin read with `weights_only=True` (no pickled code runs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} is not a state dict of tensors")
    return state


def projector_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A projector file (`--pretrain_mm_mlp_adapter`) as `{linear_1.weight, ..., linear_2.bias}`: LLaVA's
    mm_projector.bin keys (`...mm_projector.0/2.*`) or llava-hf's (`...multi_modal_projector.linear_1/2.*`)."""
    out = {}
    for key, value in read_tensors(path).items():
        if "mm_projector." in key:
            local = key.split("mm_projector.", 1)[1]
            index, _, rest = local.partition(".")
            names = {"0": "linear_1", "2": "linear_2"}
            if index not in names:
                raise ValueError(f"{path}: {key!r} is not part of an mlp2x projector (LLaVA-1.5's mlp2x_gelu)")
            out[f"{names[index]}.{rest}"] = value
        elif "multi_modal_projector." in key:
            out[key.split("multi_modal_projector.", 1)[1]] = value
        else:
            raise ValueError(f"{path}: {key!r} is not a projector weight (expected ...mm_projector.* or "
                             f"...multi_modal_projector.* keys)")
    return out


def load_projector(projector: torch.nn.Module, path: str | Path) -> None:
    """Copy a projector file into `projector` (llava-hf's LlavaMultiModalProjector); every weight must be there,
    with its shape. Under ZeRO-3 the caller gathers the parameters first."""
    state, own = projector_state(path), dict(projector.named_parameters())
    missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    if missing or unexpected:
        raise ValueError(f"{path} does not match the checkpoint's projector: missing {missing}, unexpected "
                         f"{unexpected}")
    for name, p in own.items():
        if tuple(state[name].shape) != tuple(p.shape):
            raise ValueError(f"{path}: {name} has shape {tuple(state[name].shape)}, the checkpoint's projector "
                             f"{tuple(p.shape)}")
        with torch.no_grad():
            p.copy_(state[name].to(p.dtype))


def check_architecture_flags(config, *, mm_projector_type: str | None = None,
                             mm_vision_select_layer: int | None = None, mm_vision_select_feature: str | None = None,
                             mm_use_im_start_end: bool | None = None, mm_use_im_patch_token: bool | None = None,
                             mm_patch_merge_type: str | None = None) -> None:
    """LLaVA's flags that describe the model, against a llava-hf `LlavaConfig`: a flag left out (None) or equal to
    the checkpoint passes, any other value is an error naming the flag, its value and the checkpoint's. Given for a
    checkpoint that is no LLaVA-1.5 (another model family), they are errors."""
    given = {"--mm_projector_type": mm_projector_type, "--mm_vision_select_layer": mm_vision_select_layer,
             "--mm_vision_select_feature": mm_vision_select_feature, "--mm_use_im_start_end": mm_use_im_start_end,
             "--mm_use_im_patch_token": mm_use_im_patch_token, "--mm_patch_merge_type": mm_patch_merge_type}
    if not any(v is not None for v in given.values()):
        return
    if getattr(config, "model_type", None) != "llava":
        flags = ", ".join(f for f, v in given.items() if v is not None)
        raise ValueError(f"{flags}: LLaVA-1.5's architecture flags, but the checkpoint is a {config.model_type} "
                         f"model; leave them out")
    checkpoint = {
        "--mm_projector_type": f"mlp2x_{config.projector_hidden_act}",
        "--mm_vision_select_layer": config.vision_feature_layer,
        "--mm_vision_select_feature": {v: k for k, v in SELECT_FEATURE.items()}.get(
            config.vision_feature_select_strategy, config.vision_feature_select_strategy),
        "--mm_use_im_start_end": False,  # llava-hf's processor inserts no image start/end tokens
        "--mm_use_im_patch_token": False,  # nor an image patch token: the <image> token is expanded instead
        "--mm_patch_merge_type": "flat",  # LLaVA-1.5's (anyres/unpad are LLaVA-NeXT's, another model class)
    }
    for flag, value in given.items():
        if value is not None and value != checkpoint[flag]:
            raise ValueError(f"{flag} {value}: the checkpoint has {checkpoint[flag]}. The flag describes the model, "
                             f"which the checkpoint already fixes; pass {checkpoint[flag]} or leave it out")
