"""Saving and restoring a ThanoRA adapter.

Layout of an output directory (and of every checkpoint), only what loading and resuming need:
  adapter_config.json, adapter_model.safetensors   the portable adapter: loads with plain
        `PeftModel.from_pretrained(original_base, dir)`. In `activation` and `random` mode the base is untouched
        and this is the trained rank-r adapter itself. In `context` mode it is the rank-2r LoRA `[B, -B0] [A; A0]`
        with the same scaling (llava_thanora.residual), i.e. `s (B A - B0 A0)`; its two halves are the trained
        factors and the initial blocks, which rebuild the residual base when resuming.
  thanora.json               allocation, penalties and the trained LoRA alpha (`ThanoRAState.to_json_dict`).
Directories written before this layout (with `thanora_residual/` and `thanora_init.safetensors`) still load.
The allocation figure (plot.py) is drawn by the caller: saving needs no plotting library.
"""

from __future__ import annotations

import copy
import json
import os

import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file
from torch import nn

from ..distributed import rank
from ..residual import (
    ADAPTER_FILE, lora_key, lora_layers, lora_scaling, portable_config, split_portable, subtract_initial, to_portable,
    write_adapter,
)
from .state import ThanoRAState

STATE_FILE = "thanora.json"
OLD_RESIDUAL_DIR, OLD_INIT_FILE = "thanora_residual", "thanora_init.safetensors"  # the earlier layout, read only


def portable_state_dict(lora_sd: dict[str, torch.Tensor], state: ThanoRAState) -> dict[str, torch.Tensor]:
    """`[B, -B0] [A; A0]` per module (context mode), from the trained residual-form adapter tensors."""
    initial = {}
    for name, (a0, b0) in state.init_blocks.items():
        initial[lora_key(name, "A")], initial[lora_key(name, "B")] = a0, b0
    return to_portable(lora_sd, initial)


def save_thanora(
    output_dir: str, peft_model: PeftModel, state: ThanoRAState, state_dict: dict[str, torch.Tensor] | None = None
) -> None:
    """Write the portable adapter and thanora.json (module docstring).

    `state_dict`: the model's full state dict when the LoRA parameters are not materialized on this
    process (DeepSpeed ZeRO-3: pass the consolidated state dict, keys as in `peft_model.state_dict()`).
    Only rank 0 writes; other ranks return at once.
    """
    if rank() != 0:
        return
    if state_dict is None:
        empty = [n for n, p in peft_model.named_parameters() if "lora_" in n and p.numel() == 0]
        if empty:
            raise ValueError(f"LoRA parameters are partitioned (e.g. {empty[0]}); pass the gathered state_dict")
    lora_sd = get_peft_model_state_dict(peft_model, state_dict=state_dict, adapter_name=state.adapter_name)
    lora_config = peft_model.peft_config[state.adapter_name]
    state.lora_alpha = lora_config.lora_alpha
    os.makedirs(output_dir, exist_ok=True)
    if state.config.init == "context":
        write_adapter(output_dir, portable_config(lora_config), portable_state_dict(lora_sd, state))
    else:  # the base weights were not changed: the trained adapter is already portable
        write_adapter(output_dir, lora_config, lora_sd)
    with open(os.path.join(output_dir, STATE_FILE), "w") as handle:
        json.dump(state.to_json_dict(), handle, indent=1)


def _saved_adapter(directory: str, state: ThanoRAState) -> tuple[LoraConfig, dict[str, torch.Tensor]]:
    """(residual-form LoraConfig, trained adapter tensors), filling `state.init_blocks` in context mode."""
    if os.path.isdir(os.path.join(directory, OLD_RESIDUAL_DIR)):
        residual_dir = os.path.join(directory, OLD_RESIDUAL_DIR)
        if state.config.init == "context":
            init = load_file(os.path.join(directory, OLD_INIT_FILE))
            for name in state.modules:
                state.init_blocks[name] = (init[f"{name}.A0"], init[f"{name}.B0"])
        return LoraConfig.from_pretrained(residual_dir), load_file(os.path.join(residual_dir, ADAPTER_FILE))
    config = LoraConfig.from_pretrained(directory)
    weights = load_file(os.path.join(directory, ADAPTER_FILE))
    if state.config.init != "context":
        return config, weights
    if state.lora_alpha is None:
        raise ValueError(f"{os.path.join(directory, STATE_FILE)}: no lora_alpha to rebuild the residual-form adapter")
    weights, initial = split_portable(weights, state.r)
    for name in state.modules:
        state.init_blocks[name] = (initial[lora_key(name, "A")], initial[lora_key(name, "B")])
    config = copy.deepcopy(config)
    config.r, config.lora_alpha = state.r, state.lora_alpha
    return config, weights


def load_thanora(
    base_model: nn.Module, directory: str, adapter_name: str = "default", is_trainable: bool = True
) -> tuple[PeftModel, ThanoRAState]:
    """Rebuild the trained ThanoRA model on the ORIGINAL `base_model` (no preview pass).

    In context mode the base weights become the residual `W - s B0 A0` (ZeRO-3 partitioned weights are
    gathered), then the residual-form adapter is loaded. The returned state has the penalty hooks
    attached, so training can resume.
    """
    state_path = os.path.join(directory, STATE_FILE)
    if not os.path.isfile(state_path):
        raise FileNotFoundError(f"{state_path}: not a ThanoRA output directory")
    with open(state_path) as handle:
        state = ThanoRAState.from_json_dict(json.load(handle), source=state_path)
    state.adapter_name = adapter_name
    lora_config, weights = _saved_adapter(directory, state)
    missing = [name for name in state.modules if lora_key(name, "A") not in weights]
    if missing:
        raise ValueError(f"{os.path.join(directory, ADAPTER_FILE)}: no adapter tensors for {missing[:5]}")
    if state.config.init == "context":
        for name, (a0, b0) in state.init_blocks.items():
            subtract_initial(base_model.get_submodule(name).weight, a0, b0, lora_scaling(lora_config))
    lora_config.inference_mode = not is_trainable
    peft_model = get_peft_model(base_model, lora_config, adapter_name=adapter_name)
    result = set_peft_model_state_dict(peft_model, weights, adapter_name=adapter_name)
    if result.unexpected_keys:
        raise ValueError(f"{directory}: adapter tensors that match no layer: {result.unexpected_keys[:5]}")
    layers = lora_layers(peft_model, adapter_name)
    if set(layers) != set(state.modules):
        raise ValueError(f"{directory}: adapted modules differ from those in {state_path}")
    state.attach(layers)
    return peft_model, state
