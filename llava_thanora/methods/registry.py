"""`--method NAME` → a Method instance. Imports are lazy so that a method's dependencies load only when used."""

from __future__ import annotations

import importlib

from .base import Method

# name -> "module:Class" inside llava_thanora.methods
_METHODS = {
    "lora": "lora:LoRAMethod",
    "dora": "lora:DoRAMethod",
    "thanora": "thanora:ThanoRAMethod",
    "pissa": "peft_init:PiSSAMethod",
    "corda": "peft_init:CorDAMethod",
    "moelora": "moelora_method:MoELoRAMethod",
    "individual": "individual:IndividualMethod",
    "merge_ta": "individual:MergeTAMethod",
    "merge_ties": "individual:MergeTIESMethod",
    "merge_dare": "individual:MergeDAREMethod",
    "projector": "full:ProjectorMethod",
    "full": "full:FullMethod",
}


def available_methods() -> list[str]:
    return sorted(_METHODS)


def get_method(name: str) -> Method:
    if name not in _METHODS:
        raise ValueError(f"unknown --method {name!r}; choose one of {', '.join(available_methods())}")
    module, cls = _METHODS[name].split(":")
    return getattr(importlib.import_module(f"llava_thanora.methods.{module}"), cls)()
