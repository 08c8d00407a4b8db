"""Saving and loading a MoE-LoRA adapter: `moelora_config.json` and `moelora_model.safetensors`."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .apply import apply_moelora
from .layer import MoELoRAConfig

CONFIG_NAME = "moelora_config.json"
WEIGHTS_NAME = "moelora_model.safetensors"
ADAPTER_KEY = re.compile(r"\.(lora_A|lora_B|lora_router)\.weight$")


def save_moelora(model: nn.Module, output_dir: str | Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
    """Write ``moelora_config.json`` and ``moelora_model.safetensors`` (adapter and router weights only).

    ``state_dict``: an already gathered state dict (any superset of the adapter keys, e.g. the full model's
    under DeepSpeed ZeRO-3, whose module parameters are empty outside forward). Defaults to ``model``'s own.
    """
    config = getattr(model, "moelora_config", None)
    if config is None:
        raise ValueError("save_moelora: the model was not prepared with apply_moelora")
    source = model.state_dict() if state_dict is None else state_dict
    tensors = {k: v.detach().cpu().contiguous() for k, v in source.items() if ADAPTER_KEY.search(k)}
    if not tensors:
        raise ValueError("save_moelora: no lora_A / lora_B / lora_router weights in the state dict")
    empty = [k for k, v in tensors.items() if v.numel() == 0]
    if empty:
        raise ValueError(
            f"save_moelora: {len(empty)} adapter tensors are empty (e.g. {empty[0]}); under DeepSpeed ZeRO-3 pass "
            "the gathered state dict (state_dict=...) instead of reading the partitioned module"
        )
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    payload = {"method": "moelora", **dataclasses.asdict(config)}
    (output_dir / CONFIG_NAME).write_text(json.dumps(payload, indent=2) + "\n")
    save_file(tensors, str(output_dir / WEIGHTS_NAME), metadata={"format": "pt"})


def read_moelora_config(adapter_dir: str | Path) -> MoELoRAConfig:
    """The :class:`MoELoRAConfig` saved in ``adapter_dir``; errors name the file."""
    config_path = Path(adapter_dir) / CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"MoE-LoRA: missing {config_path}")
    try:
        payload = json.loads(config_path.read_text())
        if payload.pop("method", None) != "moelora":
            raise ValueError("'method' is not 'moelora'")
        return MoELoRAConfig(**payload)
    except (ValueError, TypeError) as err:  # JSONDecodeError is a ValueError
        raise ValueError(f"MoE-LoRA: bad config {config_path}: {err}") from err


def load_moelora_weights(model: nn.Module, adapter_dir: str | Path) -> None:
    """Load the saved adapter and router weights into a model already prepared by :func:`apply_moelora`
    (e.g. to resume training); every adapter tensor must be present, and nothing else."""
    weights_path = Path(adapter_dir) / WEIGHTS_NAME
    if not weights_path.is_file():
        raise FileNotFoundError(f"MoE-LoRA: missing {weights_path}")
    tensors = load_file(str(weights_path))
    expected = {k for k in model.state_dict() if ADAPTER_KEY.search(k)}
    missing, unexpected = sorted(expected - tensors.keys()), sorted(tensors.keys() - expected)
    if missing or unexpected:
        raise ValueError(
            f"MoE-LoRA: {weights_path} does not fit the model: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    model.load_state_dict(tensors, strict=False)


def load_moelora(base_model: nn.Module, adapter_dir: str | Path) -> nn.Module:
    """Apply the saved MoE-LoRA of ``adapter_dir`` to ``base_model`` (in place) and load its weights."""
    model = apply_moelora(base_model, read_moelora_config(adapter_dir))
    load_moelora_weights(model, adapter_dir)
    return model
