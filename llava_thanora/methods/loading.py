"""Load any training output for inference or merging, choosing by the files present (never by folder names).

    full or merged model   config.json + weights               -> load_trained(path)
    peft adapter (any of lora/dora/pissa/corda/thanora/merged) -> load_trained(path, model_base=BASE)
    MoE-LoRA               moelora_config.json                 -> load_trained(path, model_base=BASE), router kept

A peft adapter loads strictly (`load_peft_adapter`): every target module its config names must exist in the base,
every adapter layer must get its tensors from the file and every tensor must find its layer, so an adapter of
another layout can never leave the base silently unchanged. A LoRA folder written by haotian-liu/LLaVA (keys
`base_model.model.model.layers.*`, `adapter_model.bin`, `non_lora_trainables.bin` with `...mm_projector.*`) is
read in its own layout, onto a base converted by scripts/convert_llava_checkpoint.py.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..model.builder import load_base
from ..model.original import LANGUAGE_MODEL, PEFT_PREFIX, hf_name, is_original_key_layout, read_tensors
from .base import load_non_lora

INDIVIDUAL_MANIFEST = "individual.json"  # written by the `individual` recipe
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin")
ORIGINAL_NON_LORA = "non_lora_trainables.bin"  # haotian-liu/LLaVA's name (torch pickle, read weights_only)


class AdapterMismatchError(ValueError):
    """An adapter that does not fit the base it is loaded onto."""


def read_adapter(path: str | Path, llava_base: bool = True):
    """(peft config, adapter tensors under this project's names, whether the folder is in LLaVA's layout). Only an
    adapter for a LLaVA-1.5 base (`llava_base`) can be in LLaVA's layout: a text-only Llama's own keys look alike."""
    from peft import PeftConfig

    path = Path(path)
    file = next((path / f for f in ADAPTER_FILES if (path / f).is_file()), None)
    if file is None:
        raise FileNotFoundError(f"{path} has adapter_config.json but none of {ADAPTER_FILES}")
    config, weights = PeftConfig.from_pretrained(str(path)), read_tensors(file)
    original = llava_base and is_original_key_layout(weights)
    if original:
        renamed = {k: hf_name(k) for k in weights}
        unknown = sorted(k for k, v in renamed.items() if v is None)
        if unknown:
            raise AdapterMismatchError(f"{file}: tensors with no llava-hf counterpart: {unknown[:3]}")
        weights = {renamed[k]: v for k, v in weights.items()}
    return config, weights, original


def _target_modules(model, config, path, original: bool):
    """The module names the adapter applies to, each entry of its config checked against the base. LLaVA applied
    its suffixes (q_proj, ...) before its vision tower existed, so in its layout they name language-model modules
    only."""
    import re

    names = [n for n, _ in model.named_modules()]
    targets = config.target_modules
    if isinstance(targets, str):
        matched = [n for n in names if re.fullmatch(targets, n)]
        if not matched:
            raise AdapterMismatchError(f"{path}/adapter_config.json: target_modules {targets!r} matches no module of "
                                       "the base")
        return targets
    unmatched = sorted(t for t in targets if not any(n == t or n.endswith("." + t) for n in names))
    if unmatched:
        raise AdapterMismatchError(
            f"{path}/adapter_config.json names target modules that match no module of the base: {unmatched[:5]} "
            f"({len(unmatched)} of {len(targets)}): it was trained on another model or layout")
    if original:
        return sorted(n for n in names if n.startswith(LANGUAGE_MODEL) and n.rsplit(".", 1)[-1] in set(targets))
    return targets


def load_peft_adapter(model, path: str | Path):
    """`model` wrapped with the peft adapter of `path`, strictly (see the module docstring)."""
    from peft import PeftModel, get_peft_model_state_dict, set_peft_model_state_dict

    from ..model.families import family_of

    config, weights, original = read_adapter(path, llava_base=family_of(model).name == "llava")
    config.target_modules = _target_modules(model, config, path, original)
    config.inference_mode = True
    if hasattr(config, "init_lora_weights"):
        config.init_lora_weights = True  # no data-driven re-init: every adapter tensor is overwritten just below
    peft_model = PeftModel(model, config)
    expected = set(get_peft_model_state_dict(peft_model))
    missing, unexpected = sorted(expected - weights.keys()), sorted(weights.keys() - expected)
    if missing:
        raise AdapterMismatchError(f"{path}: the adapter file has no values for {len(missing)} of the {len(expected)} "
                                   f"adapter tensors its config creates (e.g. {missing[:2]}); merging would leave "
                                   "those modules unchanged")
    if unexpected:
        raise AdapterMismatchError(f"{path}: {len(unexpected)} adapter tensors match no module of the base "
                                   f"(e.g. {unexpected[:2]})")
    set_peft_model_state_dict(peft_model, weights)
    return peft_model


def load_original_non_lora(model, directory: str | Path) -> list[str]:
    """haotian-liu/LLaVA's non_lora_trainables.bin (projector and other trained weights, original names) into
    `model`; returns the loaded names. Every tensor must find its parameter."""
    path = Path(directory) / ORIGINAL_NON_LORA
    if not path.is_file():
        return []
    params = dict(model.named_parameters())
    loaded = []
    for key, value in read_tensors(path).items():
        name = hf_name(key if key.startswith(PEFT_PREFIX) else PEFT_PREFIX + key)
        target = None if name is None else params.get(name, params.get(name.removeprefix(PEFT_PREFIX)))
        if target is None:
            raise AdapterMismatchError(f"{path}: tensor {key!r} matches no parameter of the model")
        if tuple(target.shape) != tuple(value.shape):
            raise AdapterMismatchError(f"{path}: {key} has shape {tuple(value.shape)}, the model's {tuple(target.shape)}")
        with torch.no_grad():
            target.copy_(value.to(target.dtype))
        loaded.append(name)
    return loaded


def _processor_source(model_path: str, model_base: str | None) -> str:
    return model_path if (Path(model_path) / "tokenizer_config.json").is_file() or model_base is None else model_base


def load_trained(model_path: str, model_base: str | None = None, dtype: torch.dtype = torch.float32,
                 attn_implementation: str | None = None):
    """(model, processor, kind) with kind in {"full", "peft", "moelora"}; the model is in eval mode."""
    from ..model.families import family_of

    path = Path(model_path)
    if not path.is_dir():
        raise FileNotFoundError(f"--model-path {model_path} is not a directory")
    if model_base is None:
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{model_path} has no config.json: it looks like a training output (adapter); "
                                    "pass --model-base with the base checkpoint it was trained from")
        model, processor = load_base(model_path, dtype, attn_implementation)
        return model.eval(), processor, "full"
    model, _ = load_base(model_base, dtype, attn_implementation)
    if (path / "moelora_config.json").is_file():
        from ..moelora import load_moelora

        model, kind = load_moelora(model, model_path), "moelora"
    elif (path / "adapter_config.json").is_file():
        model, kind = load_peft_adapter(model, model_path), "peft"
    elif (path / INDIVIDUAL_MANIFEST).is_file():
        raise FileNotFoundError(f"{model_path} is a --method individual output: load one task's adapter, "
                                f"{model_path}/<task> (listed in individual.json)")
    else:
        raise FileNotFoundError(f"{model_path} holds neither adapter_config.json nor moelora_config.json")
    if (path / ORIGINAL_NON_LORA).is_file() and (path / "non_lora_trainables.safetensors").is_file():
        raise AdapterMismatchError(f"{model_path} holds both {ORIGINAL_NON_LORA} and non_lora_trainables.safetensors")
    load_non_lora(model, model_path)
    load_original_non_lora(model, model_path)
    # the output's own processor files when it saved them (as training does), loaded the family's way
    processor = family_of(model).load_processor(_processor_source(model_path, model_base))
    return model.eval(), processor, kind
