"""Merge per-task LoRA adapters (the "individual" baseline) into one adapter with peft's ``add_weighted_adapter``.

Every task t has an ordinary peft LoRA with update ``dW_t = s_t B_t A_t`` (``s_t = alpha_t / r_t``). The task
vector of task arithmetic, TIES and DARE is ``dW_t`` itself, so every combination here works on the dense
``dW_t`` (peft 0.21 semantics, checked in ``peft/tuners/lora/model.py``):

- ``"ta"`` (task arithmetic) -> peft ``"cat"``: ``A = [w_1 s_1 A_1; ...; w_T s_T A_T]``, ``B = [B_1, ..., B_T]``,
  rank ``sum_t r_t``, alpha = rank (scaling 1). Then ``B A = sum_t w_t dW_t`` *exactly*: the merged LoRA is the
  task-arithmetic sum, with no approximation. (peft's ``"linear"`` instead sums the A's and the B's separately,
  ``(sum_t sqrt(w_t s_t) B_t)(sum_t sqrt(w_t s_t) A_t)``, which adds the cross terms ``B_t A_u`` -- not task
  arithmetic -- so it is not offered.)
- ``"ties"`` / ``"dare_linear"`` / ``"dare_ties"`` -> peft ``"ties_svd"`` / ``"dare_linear_svd"`` /
  ``"dare_ties_svd"``: the method runs on the dense ``dW_t`` (TIES: keep the ``density`` fraction of largest
  magnitudes of each ``dW_t``, elect the sign per entry from the sum of the trimmed task vectors, then average
  the weighted entries that agree with it; DARE: drop each entry with probability ``1 - density`` and rescale the
  kept ones by ``1 / density``; ``dare_linear`` then sums ``w_t`` times them, ``dare_ties`` elects signs and
  averages like TIES), and the result is factored back into a LoRA by truncated SVD at rank ``svd_rank``.
  The pruned sum is generally full rank, so this last step is lossy unless ``svd_rank = min(d_out, d_in)``;
  the default ``svd_rank`` is ``sum_t r_t``, the size of the task-arithmetic result, and ``svd_rank = 0`` asks
  for the full rank (the smallest ``min(d_out, d_in)`` of the adapted layers: exact). DARE is random: seed
  torch first for a reproducible merge. peft's factor-wise ``"ties"``/``"dare_*"`` (pruning A and B
  separately) are not offered: pruning the factors does not prune the task vector.

Weights default to 1 for every task (a plain sum; pass ``1/T`` each for an average).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from peft import LoraConfig, PeftConfig, PeftModel
from peft.utils import merge_utils

from ..residual import lora_layers

PEFT_COMBINATION = {"ta": "cat", "ties": "ties_svd", "dare_linear": "dare_linear_svd", "dare_ties": "dare_ties_svd"}
MERGED_NAME = "default"  # peft saves the adapter called "default" directly in the output dir, no sub-folder


def _check_adapter(task: str, adapter_dir: str) -> LoraConfig:
    config = PeftConfig.from_pretrained(adapter_dir)
    if not isinstance(config, LoraConfig):
        raise ValueError(f"merge_adapters: task {task!r}: {adapter_dir} is a {config.peft_type} adapter, not LoRA")
    # peft sizes the merged adapter with lora_alpha = rank and assumes scaling alpha/r = 1, which rsLoRA
    # (alpha/sqrt(r)) breaks; DoRA's magnitude vector has no merge rule at all.
    if config.use_rslora or config.use_dora:
        raise ValueError(f"merge_adapters: task {task!r}: {adapter_dir} uses rsLoRA or DoRA, which cannot be merged")
    if config.modules_to_save:
        raise ValueError(
            f"merge_adapters: task {task!r}: {adapter_dir} fully trains modules_to_save={config.modules_to_save}; "
            "only LoRA weights can be merged"
        )
    return config


def merge_adapters(
    base_model: torch.nn.Module,
    adapter_dirs: dict[str, str],
    combination: str = "ta",
    weights: list[float] | None = None,
    density: float = 1.0,
    svd_rank: int | None = None,
) -> PeftModel:
    """Load the per-task LoRA adapters ``{task: dir}`` onto ``base_model`` and merge them into one adapter.

    ``combination``: ``"ta"``, ``"ties"``, ``"dare_linear"`` or ``"dare_ties"`` (see the module docstring).
    ``weights``: one per task, in ``adapter_dirs`` order (default 1 each). ``density``: fraction of each task
    vector kept by TIES / DARE, in (0, 1]; ignored by ``"ta"``. ``svd_rank``: rank of the TIES / DARE result
    (default: sum of the task ranks). ``base_model`` is modified in place (peft injects its layers).
    Returns a PeftModel holding only the merged adapter, named ``"default"`` and active.
    """
    if combination not in PEFT_COMBINATION:
        raise ValueError(f"merge_adapters: combination must be one of {sorted(PEFT_COMBINATION)}, got {combination!r}")
    if len(adapter_dirs) < 2:
        raise ValueError(f"merge_adapters: need at least two task adapters, got {list(adapter_dirs)}")
    weights = [1.0] * len(adapter_dirs) if weights is None else [float(w) for w in weights]
    if len(weights) != len(adapter_dirs):
        raise ValueError(f"merge_adapters: {len(weights)} weights for {len(adapter_dirs)} adapters {list(adapter_dirs)}")
    if not 0.0 < density <= 1.0:
        raise ValueError(f"merge_adapters: density must be in (0, 1], got {density}")

    configs = {task: _check_adapter(task, str(path)) for task, path in adapter_dirs.items()}
    # peft adapter names become module-dict keys: no dots, and "default" is kept for the result.
    names = [f"task{i}_{re.sub(r'[^A-Za-z0-9_]', '_', task)}" for i, task in enumerate(adapter_dirs)]
    model = None
    for name, path in zip(names, adapter_dirs.values()):
        if model is None:
            model = PeftModel.from_pretrained(base_model, str(path), adapter_name=name)
        else:
            model.load_adapter(str(path), adapter_name=name)

    ranks = [max([config.r, *config.rank_pattern.values()]) for config in configs.values()]
    if svd_rank == 0:  # full rank: the smallest min(d_out, d_in) of the adapted layers, so no layer is truncated
        svd_rank = min(min(m.in_features, m.out_features) for m in lora_layers(model, names[0]).values())
    model.add_weighted_adapter(
        adapters=names,
        weights=weights,
        adapter_name=MERGED_NAME,
        combination_type=PEFT_COMBINATION[combination],
        svd_rank=svd_rank or sum(ranks),
        density=density,
    )
    model.set_adapter(MERGED_NAME)
    for name in names:
        model.delete_adapter(name)
    return model.eval()


def merge_tensors(base: dict[str, torch.Tensor], tuned: list[dict[str, torch.Tensor]], combination: str,
                  weights: list[float], density: float) -> dict[str, torch.Tensor]:
    """Trained non-adapter tensors (e.g. projectors) merged like the adapters: their task vectors `P_t - P_0`
    go through the same combination (peft's ``merge_utils``: task arithmetic, TIES, DARE) with the same weights
    and density, and are added back to the base values `P_0`."""
    merge = {"ta": lambda t, w: merge_utils.task_arithmetic(t, w),
             "ties": lambda t, w: merge_utils.ties(t, w, density),
             "dare_linear": lambda t, w: merge_utils.dare_linear(t, w, density),
             "dare_ties": lambda t, w: merge_utils.dare_ties(t, w, density)}[combination]
    w = torch.tensor(weights, dtype=torch.float32)
    out = {}
    for key, start in base.items():
        vectors = [t[key].float() - start.float() for t in tuned]
        out[key] = (start.float() + merge(vectors, w)).to(start.dtype)
    return out


def save_merged_adapter(model: PeftModel, output_dir: str | Path) -> None:
    """Write the merged adapter as an ordinary peft adapter dir (``PeftModel.from_pretrained(base, output_dir)``)."""
    if list(model.peft_config) != [MERGED_NAME]:
        raise ValueError(f"save_merged_adapter: expected only the merged adapter, found {list(model.peft_config)}")
    model.save_pretrained(str(output_dir))


__all__ = ["PEFT_COMBINATION", "merge_adapters", "merge_tensors", "save_merged_adapter"]
