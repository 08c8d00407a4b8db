"""`--method NAME` -> the Method class that trains it: one line per method.

A method is one file (its class, with its flags as `arguments`) plus one line here. Multi-run drivers
(`individual`, `merge_*`) are recipes, listed in `llava_thanora/recipes/registry.py`; `train.py` accepts both.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType

from .base import Method

# name -> "module:Class" inside llava_thanora.methods
METHODS: Mapping[str, str] = MappingProxyType({
    "lora": "lora:LoRAMethod",
    "dora": "lora:DoRAMethod",
    "thanora": "thanora:ThanoRAMethod",
    "pissa": "peft_init:PiSSAMethod",
    "corda": "peft_init:CorDAMethod",
    "moelora": "moelora:MoELoRAMethod",
    "projector": "full:ProjectorMethod",
    "full": "full:FullMethod",
})


def resolve(table: Mapping[str, str], package: str) -> dict[str, type]:
    """Import every "module:Class" of `table` from `package`; {name: class}."""
    out = {}
    for name, target in table.items():
        module, cls = target.split(":")
        out[name] = getattr(importlib.import_module(f"{package}.{module}"), cls)
    return out


def method_classes() -> dict[str, type[Method]]:
    """Every registered method class by name."""
    return resolve(METHODS, "llava_thanora.methods")


def get_method(name: str, args=None) -> Method:
    """An instance of the method called `name` (with its flags `args`, default values when None)."""
    if name not in METHODS:
        raise ValueError(f"unknown --method {name!r}; choose one of {', '.join(sorted(METHODS))}")
    return resolve({name: METHODS[name]}, "llava_thanora.methods")[name](args)
