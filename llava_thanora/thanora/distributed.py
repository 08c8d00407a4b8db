"""The few collective operations ThanoRA needs; all are no-ops in a single process.

Under DeepSpeed ZeRO-3 a partitioned parameter has a `ds_id` attribute and shape [0] outside its module's
forward. `gathered` materializes such parameters (DeepSpeed is imported only when one exists).
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


def _comm_device(tensor: torch.Tensor) -> torch.device:
    # NCCL only moves CUDA tensors; gloo takes CPU (and CUDA) tensors.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return tensor.device


def all_reduce_sum_(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over ranks in place and return it."""
    if is_distributed():
        buffer = tensor.to(_comm_device(tensor))
        dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
        if buffer is not tensor:
            tensor.copy_(buffer)
    return tensor


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


def is_partitioned(param: torch.Tensor) -> bool:
    """A DeepSpeed ZeRO-3 managed parameter."""
    return hasattr(param, "ds_id")


@contextlib.contextmanager
def gathered(params: Iterable[nn.Parameter], modifier_rank: int | None = None) -> Iterator[None]:
    """Materialize ZeRO-3 partitioned `params` inside the block.

    With `modifier_rank=0` rank 0's in-place changes are re-partitioned to every rank on exit; with
    None the block must only read. Parameters not managed by DeepSpeed pass through untouched.
    """
    # Skip parameters an enclosing block already materialized: DeepSpeed refuses nested gathers of one param.
    partitioned = [p for p in params if is_partitioned(p) and p.ds_status.name == "NOT_AVAILABLE"]
    if not partitioned:
        yield
        return
    import deepspeed  # lazy: only ZeRO-3 runs need it

    with deepspeed.zero.GatheredParameters(partitioned, modifier_rank=modifier_rank):
        yield
