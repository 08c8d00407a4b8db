"""Model families: one file each, chosen from the checkpoint's `config.json` (`model_type`), never from folder names.

    family_of(path_or_config)   the Family that loads and describes a checkpoint

Adding a family: a file with a `Family` subclass (see `base.py`) and one line in `FAMILIES`.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from .base import Family

# name -> "module:Class" inside llava_thanora.model.families
FAMILIES: Mapping[str, str] = MappingProxyType({
    "llava": "llava:LlavaFamily",
    "llava_next": "llava_next:LlavaNextFamily",
    "llava_onevision": "llava_onevision:LlavaOnevisionFamily",
    "qwen2_vl": "qwen2_vl:Qwen2VLFamily",
    "qwen2_5_vl": "qwen2_5_vl:Qwen2_5_VLFamily",
    "causal_lm": "causal_lm:CausalLMFamily",
})


def family_classes() -> dict[str, type[Family]]:
    out = {}
    for name, target in FAMILIES.items():
        module, cls = target.split(":")
        out[name] = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    return out


def family_for_model_type(model_type: str) -> Family:
    for cls in family_classes().values():
        if model_type in cls.model_types:
            return cls()
    known = sorted(t for cls in family_classes().values() for t in cls.model_types)
    raise ValueError(f"no model family loads model_type {model_type!r}; supported: {', '.join(known)}")


def family_of(source) -> Family:
    """The family of a checkpoint folder (its config.json), a config dict, or a loaded model / config object."""
    if isinstance(source, (str, Path)):
        path = Path(source) / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{source}: no config.json, so the model family cannot be told")
        model_type = json.loads(path.read_text()).get("model_type")
        if model_type is None:
            raise ValueError(f"{path} has no model_type")
    elif isinstance(source, Mapping):
        model_type = source.get("model_type")
    else:
        config = getattr(source, "config", source)
        model_type = getattr(config, "model_type", None)
    return family_for_model_type(model_type)


__all__ = ["FAMILIES", "Family", "family_classes", "family_for_model_type", "family_of"]
