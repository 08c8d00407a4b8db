"""The one place that knows about torch.distributed and DeepSpeed ZeRO-3; every helper is a no-op in one process.

Under ZeRO-3 a partitioned parameter carries DeepSpeed's bookkeeping (`ds_id`, `ds_numel`, `ds_tensor`) and has
shape [0] outside its module's forward. `is_partitioned` is the only test for that in the project, and `gathered`
the only way to materialize such parameters (DeepSpeed is imported only when one exists); `gathered_per_module`
does it module by module during forwards run outside DeepSpeed's engine (ThanoRA's preview), with a `GatherMeter`
counting what a rank holds. Rank, world size, the ZeRO stage of a config and the few collectives ThanoRA's
preview needs live here too, so no other module reads them by hand.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
import torch.distributed as dist
from torch import nn


def is_distributed() -> bool:
    """True when torch.distributed is initialized with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's global rank (0 without torch.distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of ranks (1 without torch.distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_partitioned(param: torch.Tensor) -> bool:
    """A parameter managed (and partitioned) by DeepSpeed ZeRO-3."""
    return hasattr(param, "ds_id")


def is_zero3(model: nn.Module) -> bool:
    """Whether any parameter of `model` is ZeRO-3 partitioned (the model was built under `zero.Init`)."""
    return any(is_partitioned(p) for p in model.parameters())


def full_numel(param: torch.Tensor) -> int:
    """Elements of the whole parameter, also when this rank holds only a partition of it."""
    return param.ds_numel if is_partitioned(param) else param.numel()


def held_numel(param: torch.Tensor) -> int:
    """Elements this rank really holds: its partition under ZeRO-3, else the whole parameter."""
    return param.ds_tensor.numel() if is_partitioned(param) else param.numel()


@contextlib.contextmanager
def gathered(params: Iterable[nn.Parameter], modifier_rank: int | None = None) -> Iterator[None]:
    """Materialize ZeRO-3 partitioned `params` inside the block; all ranks must enter it together.

    With `modifier_rank=0` rank 0's in-place changes are re-partitioned to every rank on exit; with None the
    block must only read. Parameters not managed by DeepSpeed, and those an enclosing block already
    materialized (DeepSpeed refuses nested gathers of one parameter), pass through untouched.
    """
    partitioned = [p for p in params if is_partitioned(p) and p.ds_status.name == "NOT_AVAILABLE"]
    if not partitioned:
        yield
        return
    import deepspeed  # lazy: only ZeRO-3 runs need it

    with deepspeed.zero.GatheredParameters(partitioned, modifier_rank=modifier_rank):
        yield


class GatherMeter:
    """Counts the parameter elements this rank holds while ZeRO-3 partitions are gathered through it: its own
    partitions always, plus every gathered parameter in full while gathered. `peak` is the most at once."""

    def __init__(self, model: nn.Module) -> None:
        sharded = [p for p in model.parameters() if is_partitioned(p)]
        self.partitioned = bool(sharded)  # else every method here is a no-op
        self.partition = sum(held_numel(p) for p in sharded)
        # The largest module's own parameters: what one per-module gather adds at most.
        self.largest_module = max((sum(full_numel(p) for p in m.parameters(recurse=False)) for m in model.modules()),
                                  default=0)
        self.peak = self.partition
        self._extra = 0

    @contextlib.contextmanager
    def gathered(self, params: Iterable[nn.Parameter]) -> Iterator[None]:
        """`gathered(params)` (read-only), counted."""
        params = list(params)
        extra = sum(full_numel(p) for p in params if is_partitioned(p) and p.ds_status.name == "NOT_AVAILABLE")
        with gathered(params):
            self._extra += extra
            self.peak = max(self.peak, self.partition + self._extra)
            try:
                yield
            finally:
                self._extra -= extra


@contextlib.contextmanager
def gathered_per_module(model: nn.Module) -> Iterator[GatherMeter]:
    """Inside the block, each module of a ZeRO-3 partitioned `model` has its own (direct) parameters gathered
    while its forward runs and released right after, as DeepSpeed's engine does during training; outside an
    engine nothing else would gather them. All ranks must run the same modules in the same order (each gather
    is a collective). Read-only: changes made to gathered parameters are discarded. Yields the meter that
    counts what this rank holds (no-op, with `partitioned` False, for a model that is not partitioned).
    """
    meter = GatherMeter(model)
    if not meter.partitioned:
        yield meter
        return
    open_gathers: dict[nn.Module, list[contextlib.AbstractContextManager]] = {}

    def before(module: nn.Module, args) -> None:
        context = meter.gathered(module.parameters(recurse=False))
        context.__enter__()
        open_gathers.setdefault(module, []).append(context)

    def after(module: nn.Module, args, output) -> None:
        stack = open_gathers.get(module)
        if stack:
            stack.pop().__exit__(None, None, None)

    handles = []
    for module in model.modules():
        if any(is_partitioned(p) for p in module.parameters(recurse=False)):
            handles.append(module.register_forward_pre_hook(before))
            handles.append(module.register_forward_hook(after, always_call=True))
    try:
        yield meter
    finally:
        for handle in handles:
            handle.remove()
        for stack in open_gathers.values():  # left open only by an exception inside a forward
            while stack:
                stack.pop().__exit__(None, None, None)


def zero_stage(deepspeed_config: str | dict | None) -> int:
    """The ZeRO stage of a DeepSpeed config (`--deepspeed` path or dict); 0 without DeepSpeed."""
    if not deepspeed_config:
        return 0
    if isinstance(deepspeed_config, str):
        import json

        with open(deepspeed_config) as handle:
            deepspeed_config = json.load(handle)
    return int(deepspeed_config.get("zero_optimization", {}).get("stage", 0))


def _comm_device(tensor: torch.Tensor) -> torch.device:
    # NCCL only moves CUDA tensors; gloo takes CPU (and CUDA) tensors.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return tensor.device


def _all_reduce_(tensor: torch.Tensor, op) -> torch.Tensor:
    if is_distributed():
        buffer = tensor.to(_comm_device(tensor))
        dist.all_reduce(buffer, op=op)
        if buffer is not tensor:
            tensor.copy_(buffer)
    return tensor


def all_reduce_sum_(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over ranks in place and return it."""
    return _all_reduce_(tensor, dist.ReduceOp.SUM)


def all_reduce_max_(tensor: torch.Tensor) -> torch.Tensor:
    """Maximum of `tensor` over ranks, in place (e.g. "did any rank fail?")."""
    return _all_reduce_(tensor, dist.ReduceOp.MAX)


def broadcast_(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite `tensor` on every rank with rank `src`'s values; return it."""
    if is_distributed():
        buffer = tensor.contiguous().to(_comm_device(tensor))
        dist.broadcast(buffer, src=src)
        if buffer is not tensor:
            tensor.copy_(buffer)
    return tensor


def broadcast_object(obj: object, src: int = 0) -> object:
    """Rank `src`'s copy of a picklable object, on every rank."""
    if not is_distributed():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]
