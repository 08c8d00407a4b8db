"""The one place that knows about torch.distributed and DeepSpeed ZeRO-3; every helper is a no-op in one process.

Under ZeRO-3 a partitioned parameter carries DeepSpeed's bookkeeping (`ds_id`, `ds_numel`, `ds_tensor`) and has
shape [0] outside its module's forward. `is_partitioned` is the only test for that in the project, and `gathered`
the only way to materialize such parameters (DeepSpeed is imported only when one exists). Rank, world size and
the few collectives ThanoRA's preview needs live here too, so no other module reads them by hand.
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
