"""Instruction preview: per-task input covariances of the adapted layers (METHOD.md step 1).

Memory stays within `cov_budget_mb`: the distinct layer inputs are split into chunks whose covariances
(one task at a time) fit the budget, and every chunk re-runs the preview forwards. Layers that read the
same input tensor (q/k/v, gate/up) share one accumulator; sharing is detected by tensor identity in one
forward, so it works for any architecture.

Accumulation runs in `dtype` (float64 by default, see blocks.py): a float32 sum of x x^T has an error of
about 1e-7 of the largest entries, which on activations with massive outlier directions exceeds the smallest
eigenvalues of the covariance itself. Only the lower block triangle of x^T x is computed (linalg.py), 5/8 of a GEMM.

Under DeepSpeed ZeRO-3 (`lockstep=True`) parameters are gathered module by module as the forwards run, which
is a collective: every rank must run the same modules in the same order. Ranks with fewer preview batches of
a task therefore run extra forwards with recording paused, and the forward function can pause recording for
passes that only keep the ranks in step (LLaVA's blank image for a text-only batch, methods/thanora.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping

import torch
from torch import nn

from ..distributed import all_reduce_max_, all_reduce_sum_, broadcast_object, rank
from .linalg import add_gram_, symmetrize_

logger = logging.getLogger(__name__)


class Recording:
    """Whether the preview hooks record right now; a forward function pauses them around passes whose inputs
    must not count (e.g. a blank image that only keeps ZeRO-3 ranks in step)."""

    def __init__(self) -> None:
        self.active = True

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        previous, self.active = self.active, False
        try:
            yield
        finally:
            self.active = previous


Batch = dict
ForwardFn = Callable[[nn.Module, Batch, Recording], object]
# consume(task, module names sharing the input, mean covariance C_t, or None when no token reached them)
Consumer = Callable[[str, list[str], "torch.Tensor | None"], None]

# Inputs kept alive while detecting sharing: consumers of one tensor run close together (q, k, v).
_RECENT_INPUTS = 8


def default_forward(model: nn.Module, batch: Batch, recording: Recording | None = None) -> None:
    """Forward a collated batch without computing the loss."""
    model(**{k: v for k, v in batch.items() if k != "labels"})


def _rows(batch: Batch, task: str) -> int:
    for key in ("input_ids", "inputs_embeds", "attention_mask"):
        if isinstance(batch.get(key), torch.Tensor):
            return batch[key].shape[0]
    raise ValueError(f"preview batch of task {task!r} has no input_ids/inputs_embeds/attention_mask to count samples")


def _trim(batch: Batch, rows: int, keep: int) -> Batch:
    """First `keep` samples of a batch when every tensor is row-aligned; else the batch unchanged."""
    tensors = [v for v in batch.values() if isinstance(v, torch.Tensor)]
    if any(t.dim() == 0 or t.shape[0] != rows for t in tensors):
        return batch
    return {k: v[:keep] if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def preview_batches(batches: Iterable[Batch], cap: int, task: str, device: torch.device) -> Iterator[Batch]:
    """Yield batches (moved to `device`) until `cap` samples (batch rows) were seen; trims the last one."""
    seen = 0
    for batch in batches:
        if seen >= cap:
            return
        rows = _rows(batch, task)
        if seen + rows > cap:
            batch = _trim(batch, rows, cap - seen)
            rows = cap - seen
        seen += rows
        yield {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _flat_inputs(x: torch.Tensor, mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    """(n, d) rows of a layer input; padding positions dropped when the mask matches (batch, seq)."""
    if mask is not None and x.dim() == 3 and tuple(mask.shape) == tuple(x.shape[:2]):
        x = x[mask.bool()]
    return x.reshape(-1, x.shape[-1]).to(dtype)


def discover_shared_inputs(
    model: nn.Module, layers: Mapping[str, nn.Module], batch: Batch, forward: ForwardFn
) -> list[list[str]]:
    """Group layer names by the input tensor object they receive in one forward of `batch`.

    Layers not called in that forward become singleton groups (correct, merely no sharing).
    """
    recent: OrderedDict[int, tuple[torch.Tensor, int]] = OrderedDict()
    groups: list[list[str]] = []
    recording = Recording()

    def make_hook(name: str):
        def hook(module, args):
            if not recording.active:
                return
            x = args[0]
            entry = recent.get(id(x))
            if entry is not None and entry[0] is x:
                groups[entry[1]].append(name)
                return
            groups.append([name])
            recent[id(x)] = (x, len(groups) - 1)  # the strong reference keeps id(x) from being reused
            if len(recent) > _RECENT_INPUTS:
                recent.popitem(last=False)

        return hook

    handles = [layer.register_forward_pre_hook(make_hook(name)) for name, layer in layers.items()]
    try:
        with torch.no_grad():
            forward(model, batch, recording)
    finally:
        for handle in handles:
            handle.remove()
        recent.clear()
    called = {name for group in groups for name in group}
    # A layer called twice in the forward may appear in two groups; keep its first group only.
    unique, placed = [], set()
    for group in groups:
        members = [n for n in group if n not in placed]
        placed.update(members)
        if members:
            unique.append(members)
    return unique + [[name] for name in layers if name not in called]


def chunk_by_budget(groups: list[list[str]], dims: list[int], itemsize: int, budget_mb: float) -> list[list[int]]:
    """Split group indices into consecutive chunks whose d^2 accumulators fit `budget_mb`.

    A single group larger than the budget gets a chunk of its own (it cannot be split).
    """
    budget = budget_mb * 2**20
    chunks: list[list[int]] = []
    used = 0.0
    for index, dim in enumerate(dims):
        size = dim * dim * itemsize
        if not chunks or used + size > budget:
            chunks.append([])
            used = 0.0
        chunks[-1].append(index)
        used += size
    return chunks


def _in_step(batches: Iterator[Batch], lockstep: bool, device: torch.device) -> Iterator[Batch | None]:
    """`batches`; with `lockstep`, as many items on every rank (None once this rank has run out), decided by one
    tiny all-reduce per step, so that no rank waits in a collective while another still runs a forward."""
    if not lockstep:
        yield from batches
        return
    while True:
        batch = next(batches, None)
        if not all_reduce_max_(torch.tensor([0.0 if batch is None else 1.0], device=device)).item():
            return
        yield batch


def collect_covariances(
    model: nn.Module,
    layers: Mapping[str, nn.Module],
    task_batches: Mapping[str, Iterable[Batch]],
    consume: Consumer,
    *,
    cap: int,
    budget_mb: float,
    dtype: torch.dtype,
    forward: ForwardFn = default_forward,
    device: torch.device | None = None,
    lockstep: bool = False,
) -> None:
    """Run the preview and hand every (task, input group) mean covariance to `consume`.

    Must be called on every rank with the same layers and tasks (each rank its own data shard): the
    covariance sums and token counts are all-reduced. Run under no_grad with the adapters disabled.
    `lockstep`: every rank runs the same number of forwards per task (ZeRO-3's per-module gathering).
    A group that no token of a task reached (summed over ranks) is handed over as None, with one warning
    per group naming the tasks.
    """
    device = device or next(model.parameters()).device
    first_task = next(iter(task_batches))
    first = next(preview_batches(task_batches[first_task], 1, first_task, device), None)
    if first is None:
        raise ValueError(f"task {first_task!r} has no preview batches")
    # Rank 0's grouping everywhere: data-dependent calls (e.g. no image on one rank) must not make the
    # ranks disagree on the collective calls below.
    groups = broadcast_object(discover_shared_inputs(model, layers, first, forward))
    dims = [layers[group[0]].in_features for group in groups]
    chunks = chunk_by_budget(groups, dims, torch.empty((), dtype=dtype).element_size(), budget_mb)
    if len(chunks) > 1:
        for task, batches in task_batches.items():
            if iter(batches) is batches:
                raise ValueError(
                    f"preview batches of task {task!r} are a one-shot iterator, but the covariance budget "
                    f"needs {len(chunks)} passes; pass a list or a DataLoader (or raise cov_budget_mb)"
                )

    recording = Recording()
    for chunk in chunks:
        unreached: dict[int, list[str]] = {}
        for task, batches in task_batches.items():
            sums = {g: torch.zeros(dims[g], dims[g], dtype=dtype, device=device) for g in chunk}
            counts = torch.zeros(len(chunk), dtype=torch.float64, device=device)
            current_mask: list[torch.Tensor | None] = [None]

            def make_hook(slot: int, g: int):
                def hook(module, args):
                    if not recording.active:
                        return
                    x = _flat_inputs(args[0].detach(), current_mask[0], dtype)
                    add_gram_(sums[g], x)
                    counts[slot] += x.shape[0]

                return hook

            handles = [layers[groups[g][0]].register_forward_pre_hook(make_hook(slot, g)) for slot, g in enumerate(chunk)]
            try:
                ran = 0
                for batch in _in_step(preview_batches(batches, cap, task, device), lockstep, device):
                    ran += 1
                    if batch is None:  # another rank still has a batch: run one, recording nothing
                        with recording.paused():
                            forward(model, first, recording)
                        continue
                    current_mask[0] = batch.get("attention_mask")
                    forward(model, batch, recording)
                if not lockstep:
                    ran = all_reduce_max_(torch.tensor([float(ran)], device=device)).item()
                if ran == 0:
                    raise ValueError(f"task {task!r} has no preview samples (on any rank)")
            finally:
                for handle in handles:
                    handle.remove()
            all_reduce_sum_(counts)
            for slot, g in enumerate(chunk):
                if counts[slot] == 0:
                    unreached.setdefault(g, []).append(task)
                    sums.pop(g)
                    consume(task, groups[g], None)
                    continue
                cov = all_reduce_sum_(symmetrize_(sums.pop(g))).div_(counts[slot].item())
                consume(task, groups[g], cov)
                del cov
        for g, tasks in unreached.items():
            if rank() == 0:
                logger.warning(f"ThanoRA preview: no token of task(s) {', '.join(map(repr, tasks))} reached "
                               f"{', '.join(groups[g])}; each gets r_min there (entropy null in thanora.json)")
