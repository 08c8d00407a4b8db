"""Load any training output for inference or merging, choosing by the files present (never by folder names).

    full or merged model   config.json + weights               -> load_trained(path)
    peft adapter (any of lora/dora/pissa/corda/thanora/merged) -> load_trained(path, model_base=BASE)
    MoE-LoRA               moelora_config.json                 -> load_trained(path, model_base=BASE), router kept
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..model.builder import load_base
from .base import load_non_lora

INDIVIDUAL_MANIFEST = "individual.json"  # written by the `individual` recipe


def _processor_source(model_path: str, model_base: str | None) -> str:
    return model_path if (Path(model_path) / "tokenizer_config.json").is_file() or model_base is None else model_base


def load_trained(model_path: str, model_base: str | None = None, dtype: torch.dtype = torch.float32,
                 attn_implementation: str | None = None):
    """(model, processor, kind) with kind in {"full", "peft", "moelora"}; the model is in eval mode."""
    from ..data.images import load_processor

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
        from peft import PeftModel

        model, kind = PeftModel.from_pretrained(model, model_path), "peft"
    elif (path / INDIVIDUAL_MANIFEST).is_file():
        raise FileNotFoundError(f"{model_path} is a --method individual output: load one task's adapter, "
                                f"{model_path}/<task> (listed in individual.json)")
    else:
        raise FileNotFoundError(f"{model_path} holds neither adapter_config.json nor moelora_config.json")
    load_non_lora(model, model_path)
    processor = load_processor(_processor_source(model_path, model_base))  # PIL image backend, as load_base
    return model.eval(), processor, kind
