"""Saving and restoring a ThanoRA adapter.

Layout of an output directory:
  adapter_config.json, adapter_model.safetensors   portable adapter: loads with plain
        `PeftModel.from_pretrained(original_base, dir)`. In context mode it is the rank-2r LoRA
        `[B, -B0] [A; A0]` with the same scaling (llava_thanora.residual), i.e. `s (B A - B0 A0)`.
  thanora_residual/{adapter_config.json, adapter_model.safetensors}   the trained adapter in its own
        (residual-base) form, for resuming; plain peft loads it onto the residual base.
  thanora_init.safetensors   initial blocks `<module>.A0`, `<module>.B0` (rebuild the residual).
  thanora.json               allocation and penalties (`ThanoRAState.to_json_dict`).
The allocation figure (plot.py) is drawn by the caller: saving needs no plotting library.
"""

from __future__ import annotations

import json
import os

import torch
from peft import LoraConfig, PeftModel, get_peft_model_state_dict
from safetensors.torch import load_file, save_file
from torch import nn

from ..distributed import rank
from ..residual import lora_key, lora_layers, lora_scaling, portable_config, subtract_initial, to_portable, write_adapter
from .state import ThanoRAState

RESIDUAL_DIR = "thanora_residual"
INIT_FILE = "thanora_init.safetensors"
STATE_FILE = "thanora.json"


def portable_state_dict(lora_sd: dict[str, torch.Tensor], state: ThanoRAState) -> dict[str, torch.Tensor]:
    """`[B, -B0] [A; A0]` per module (context mode), from the trained residual-form adapter tensors."""
    initial = {}
    for name, (a0, b0) in state.init_blocks.items():
        initial[lora_key(name, "A")], initial[lora_key(name, "B")] = a0, b0
    return to_portable(lora_sd, initial)


def save_thanora(
    output_dir: str, peft_model: PeftModel, state: ThanoRAState, state_dict: dict[str, torch.Tensor] | None = None
) -> None:
    """Write the portable adapter, the resume files and thanora.json.

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
    os.makedirs(output_dir, exist_ok=True)
    write_adapter(os.path.join(output_dir, RESIDUAL_DIR), lora_config, lora_sd)
    if state.config.init == "context":
        write_adapter(output_dir, portable_config(lora_config), portable_state_dict(lora_sd, state))
    else:  # the base weights were not changed: the trained adapter is already portable
        write_adapter(output_dir, lora_config, lora_sd)
    init = {}
    for name, (a0, b0) in state.init_blocks.items():
        init[f"{name}.A0"], init[f"{name}.B0"] = a0.contiguous(), b0.contiguous()
    save_file(init, os.path.join(output_dir, INIT_FILE), metadata={"format": "pt"})
    with open(os.path.join(output_dir, STATE_FILE), "w") as handle:
        json.dump(state.to_json_dict(), handle, indent=1)


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
    init = load_file(os.path.join(directory, INIT_FILE))
    for name in state.modules:
        if f"{name}.A0" not in init or f"{name}.B0" not in init:
            raise ValueError(f"{os.path.join(directory, INIT_FILE)}: missing initial blocks of {name}")
        state.init_blocks[name] = (init[f"{name}.A0"], init[f"{name}.B0"])
    residual_dir = os.path.join(directory, RESIDUAL_DIR)
    lora_config = LoraConfig.from_pretrained(residual_dir)
    if state.config.init == "context":
        for name, (a0, b0) in state.init_blocks.items():
            subtract_initial(base_model.get_submodule(name).weight, a0, b0, lora_scaling(lora_config))
    peft_model = PeftModel.from_pretrained(base_model, residual_dir, adapter_name=adapter_name, is_trainable=is_trainable)
    layers = lora_layers(peft_model, adapter_name)
    if set(layers) != set(state.modules):
        raise ValueError(f"{residual_dir}: adapted modules differ from those in {state_path}")
    state.attach(layers)
    return peft_model, state
