"""ThanoRA: task heterogeneity-aware multi-task LoRA (model-agnostic; produces an ordinary peft LoRA).

Typical use:
    peft_model, state = apply_thanora(model, LoraConfig(r=..., target_modules=...), ThanoRAConfig(), batches)
    state.start_step(); loss = model(**batch).loss; loss = loss + state.config.lam * state.finish_step()
    save_thanora(out_dir, peft_model, state)          # portable adapter + resume files
    peft_model, state = load_thanora(original_base, out_dir)
"""

from .allocation import allocate_ranks, rank_shares
from .config import ThanoRAConfig
from .io import load_thanora, portable_lora_config, portable_state_dict, save_thanora
from .model import apply_thanora, lora_layers
from .penalty import PenaltyCollector, spr_penalty
from .plot import plot_rank_allocation
from .spectrum import normalized_entropy
from .state import ModuleAllocation, ThanoRAState

__all__ = [
    "ModuleAllocation",
    "PenaltyCollector",
    "ThanoRAConfig",
    "ThanoRAState",
    "allocate_ranks",
    "apply_thanora",
    "load_thanora",
    "lora_layers",
    "normalized_entropy",
    "plot_rank_allocation",
    "portable_lora_config",
    "portable_state_dict",
    "rank_shares",
    "save_thanora",
    "spr_penalty",
]
