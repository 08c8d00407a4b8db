"""ThanoRA: task heterogeneity-aware multi-task LoRA (model-agnostic; produces an ordinary peft LoRA).

Read in this order: config.py, covariance.py (preview statistics), allocation.py (entropy -> shares -> ranks),
blocks.py (spectra and initial blocks), apply.py (`apply_thanora`), penalty.py, state.py, io.py, plot.py.

Typical use:
    peft_model, state = apply_thanora(model, LoraConfig(r=..., target_modules=...), ThanoRAConfig(), batches)
    state.start_step(); loss = model(**batch).loss; loss = loss + state.config.lam * state.finish_step()
    save_thanora(out_dir, peft_model, state)          # portable adapter + resume files
    plot_rank_allocation(state, out_dir + "/rank_allocation.png")
    peft_model, state = load_thanora(original_base, out_dir)
"""

from ..residual import lora_layers
from .allocation import allocate_ranks, normalized_entropy, rank_shares
from .apply import apply_thanora
from .config import ThanoRAConfig
from .io import load_thanora, portable_state_dict, save_thanora
from .penalty import PenaltyCollector, spr_penalty
from .plot import plot_rank_allocation
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
    "portable_state_dict",
    "rank_shares",
    "save_thanora",
    "spr_penalty",
]
