"""`apply_thanora`: ThanoRA on any torch model with nn.Linear layers; the result is an ordinary peft LoRA model.

preview covariances (covariance.py) -> per-task spectra and factors (blocks.py) -> ranks (allocation.py) ->
initial blocks written into the LoRA factors, and in context mode the base replaced by the residual
(llava_thanora.residual) -> a ThanoRAState whose penalty hooks (penalty.py) serve training.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import LoraLayer
from peft.tuners.lora import Linear as LoraLinear
from torch import nn

from ..distributed import broadcast_, broadcast_object, gathered, gathered_per_module
from ..residual import lora_layers, subtract_initial
from .allocation import allocate_ranks, rank_shares
from .blocks import MISSING, CovarianceFactorization, TaskFactors, build_blocks, task_factors, weight_rms
from .config import ThanoRAConfig
from .covariance import ForwardFn, collect_covariances, default_forward
from .state import ModuleAllocation, ThanoRAState

logger = logging.getLogger(__name__)


def residual_lora_config(lora_config: LoraConfig) -> LoraConfig:
    """The user's LoraConfig with the plain init (ThanoRA writes the factors itself); rejects what
    ThanoRA does not support."""
    if lora_config.rank_pattern or lora_config.alpha_pattern:
        raise ValueError("ThanoRA gives every module the same total rank r; rank_pattern/alpha_pattern are not supported")
    if lora_config.use_dora or lora_config.lora_bias:
        raise ValueError("ThanoRA needs plain LoRA factors: use_dora and lora_bias are not supported")
    if lora_config.fan_in_fan_out:
        raise ValueError("ThanoRA supports nn.Linear layers only (fan_in_fan_out=False)")
    config = copy.deepcopy(lora_config)
    config.init_lora_weights = True
    return config


def _check_layers(layers: Mapping[str, nn.Module], peft_model: nn.Module, r: int) -> None:
    if not layers:
        raise ValueError("LoraConfig.target_modules matched no nn.Linear layer of the model")
    for name, module in peft_model.base_model.model.named_modules():
        if isinstance(module, LoraLayer) and not isinstance(module, LoraLinear):
            raise ValueError(f"ThanoRA supports LoRA on nn.Linear only; {name} is a {type(module).__name__}")
    for name, layer in layers.items():
        if r > min(layer.in_features, layer.out_features):
            raise ValueError(f"r={r} exceeds min(d_in, d_out) of {name} ({layer.in_features}x{layer.out_features})")


@torch.no_grad()
def _preview(peft_model, layers, task_batches, forward, config, k_keep):
    """Per module, the factors of every task (task order of `task_batches`), and the RMS singular value of
    its frozen weight (the penalty's reference scale)."""
    dtype = getattr(torch, config.cov_dtype)
    tasks = list(task_batches)
    found: dict[str, dict[str, TaskFactors]] = {name: {} for name in layers}
    rms: dict[str, float] = {}

    def consume(task: str, names: list[str], cov: torch.Tensor | None) -> None:
        factorization = None if cov is None else CovarianceFactorization(cov, config.eps, config.init)
        for name in names:
            if factorization is None and name in rms:
                found[name][task] = MISSING
                continue
            weight = layers[name].base_layer.weight
            with meter.gathered([weight]):  # under ZeRO-3 only this layer is gathered, only for its SVD
                w = weight.detach().to(device=None if cov is None else cov.device, dtype=dtype)
            rms.setdefault(name, weight_rms(w))
            found[name][task] = MISSING if factorization is None else task_factors(
                w, factorization, k_keep, config.entropy_on_squared)
            del w

    was_training = peft_model.training
    peft_model.eval()  # no dropout in the preview
    try:
        # Before DeepSpeed's engine exists no hook gathers ZeRO-3 partitions: gathered_per_module gathers each
        # module's own parameters while it runs (and only then), so a rank never holds much more than its share.
        with gathered_per_module(peft_model) as meter, peft_model.disable_adapter():
            collect_covariances(
                peft_model, layers, task_batches, consume, cap=config.preview_samples,
                budget_mb=config.cov_budget_mb, dtype=dtype, forward=forward or default_forward,
                lockstep=meter.partitioned,
            )
    finally:
        peft_model.train(was_training)
    if meter.partitioned:
        logger.warning(f"ThanoRA preview under ZeRO-3: this rank held at most {meter.peak:,} parameter elements at "
                       f"once (its partition {meter.partition:,}; largest single module {meter.largest_module:,})")
    return {name: [per_task[t] for t in tasks] for name, per_task in found.items()}, rms


def _allocate(entropies: list[float | None], r: int, r_coop: int, config: ThanoRAConfig,
              scale: float) -> ModuleAllocation:
    tau = float("inf") if config.allocation == "uniform" else config.tau
    ranks = allocate_ranks(entropies, r, r_coop, tau, config.r_min)
    return ModuleAllocation(entropies, rank_shares(entropies, tau), ranks, scale)


@torch.no_grad()
def _write_module(layer: LoraLinear, adapter_name: str, a0: torch.Tensor, b0: torch.Tensor, residual: bool) -> None:
    """Copy the initial factors into the LoRA layer; in context mode subtract s B0 A0 from the base weight."""
    lora_a, lora_b = layer.lora_A[adapter_name].weight, layer.lora_B[adapter_name].weight
    with gathered([lora_a, lora_b], modifier_rank=0):
        lora_a.copy_(a0.to(lora_a))
        lora_b.copy_(b0.to(lora_b))
    if residual:
        subtract_initial(layer.base_layer.weight, a0, b0, layer.scaling[adapter_name])


def apply_thanora(
    model: nn.Module,
    lora_config: LoraConfig,
    config: ThanoRAConfig,
    task_batches: Mapping[str, Iterable[dict]],
    forward: ForwardFn | None = None,
    adapter_name: str = "default",
) -> tuple[PeftModel, ThanoRAState]:
    """Wrap `model` in a peft LoRA of rank `lora_config.r` whose factors are ThanoRA blocks.

    `task_batches` maps each task name to re-iterable collated batches (dicts of tensors, as the model's
    forward takes them; `attention_mask` marks padding). `forward(model, batch, recording)` runs one batch
    (default: `model(**batch)` without labels) and may pause the preview hooks with `recording.paused()`
    around passes whose inputs must not count. In distributed runs call it on every rank, each with its own
    shard; under ZeRO-3 every rank must then call the same modules in the same order (covariance.py).
    Tasks that send no token through a layer get `r_min` there (allocation.py) and the standard LoRA init.
    Returns the peft model (its base weights replaced by the residual in context mode) and the state
    whose `start_step` / `finish_step` give the penalty during training.
    """
    tasks = list(task_batches)
    if not tasks:
        raise ValueError("apply_thanora needs at least one task in task_batches")
    r = lora_config.r
    r_coop = config.resolve_r_coop(r, len(tasks))
    allocate_ranks([0.0] * len(tasks), r, r_coop, 1.0, config.r_min)  # fail fast on impossible ranks
    k_keep = r - r_coop - (len(tasks) - 1) * config.r_min  # the largest rank a task can get

    peft_model = get_peft_model(model, residual_lora_config(lora_config), adapter_name=adapter_name)
    layers = lora_layers(peft_model, adapter_name)
    _check_layers(layers, peft_model, r)
    factors, rms = _preview(peft_model, layers, task_batches, forward, config, k_keep)

    # Rank 0's entropies everywhere, so every rank allocates the same shapes.
    entropies, rms = broadcast_object(({name: [f.entropy for f in fs] for name, fs in factors.items()}, rms))
    keep_initial = config.init == "context"  # only a residual base needs (A0, B0) again (portable adapter, resume)
    modules, init_blocks = {}, {}
    for index, (name, layer) in enumerate(layers.items()):
        alloc = modules[name] = _allocate(entropies[name], r, r_coop, config, rms[name])
        generator = torch.Generator().manual_seed(config.seed + index)
        a0, b0 = build_blocks(
            factors.pop(name), alloc.ranks, r_coop, (layer.out_features, layer.in_features),
            layer.scaling[adapter_name], config.gamma, config.init, generator,
        )
        a0, b0 = broadcast_(a0), broadcast_(b0)  # SVD signs may differ across ranks
        _write_module(layer, adapter_name, a0, b0, residual=keep_initial)
        if keep_initial:
            init_blocks[name] = (a0, b0)

    state = ThanoRAState(tasks, r, r_coop, config, modules, init_blocks, adapter_name,
                         lora_alpha=lora_config.lora_alpha)
    state.attach(layers)
    return peft_model, state
