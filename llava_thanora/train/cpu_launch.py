"""Make `deepspeed train.py ...` and `python train.py ...` work on CPU-only machines (gloo) as well as on GPUs.

Three things go wrong on a CPU with deepspeed 0.19 / accelerate 1.15 / transformers 5, each measured here:
1. accelerate does not see the launcher's world size and reports 1 process, so DeepSpeed asserts on the batch
   size. Creating a gloo `PartialState` first and telling TrainingArguments to use it fixes that.
2. DeepSpeed JIT-compiles a shared-memory all-reduce op on first CPU use (about a minute of g++). gloo does the
   same job, so the build is skipped (results are unchanged).
3. `python train.py --deepspeed ...` without a launcher looks for mpi4py; a one-process rendezvous avoids it.
On a machine with CUDA none of this is applied. `prepare_cpu_launch` returns what it set up (or None), and that
value goes to `parse_args`, which then makes the TrainingArguments use the configured state.
"""

from __future__ import annotations

import importlib
import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class CpuLaunch:
    """What `prepare_cpu_launch` configured for this process."""

    world_size: int
    """Processes in the (gloo) process group."""
    deepspeed: bool
    """A `--deepspeed` run: ACCELERATE_USE_DEEPSPEED is set and DeepSpeed's shm op build is skipped."""
    own_rendezvous: bool
    """No launcher started this process: a one-process rendezvous was set up in the environment."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wants_deepspeed(argv: list[str]) -> bool:
    return any(a == "--deepspeed" or a.startswith("--deepspeed=") for a in argv)


def prepare_cpu_launch(argv: list[str]) -> CpuLaunch | None:
    """Prepare this process for a distributed CPU run; None when there is nothing to fix (a GPU machine, a plain
    single-process run, or `--no_cpu_distributed_fixes`). Must run before the TrainingArguments exist."""
    import torch

    if torch.cuda.is_available() or "--no_cpu_distributed_fixes" in argv:
        return None
    launched = "WORLD_SIZE" in os.environ
    deepspeed = wants_deepspeed(argv)
    if not (launched or deepspeed):
        return None
    if not launched:  # `python train.py --deepspeed ...`: a one-process group instead of an MPI lookup
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    os.environ.setdefault("LOCAL_SIZE", os.environ["WORLD_SIZE"])
    if deepspeed:
        os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
        # `deepspeed.comm.torch` is reached through importlib: `import deepspeed.comm.torch` would bind the name
        # `torch` to that module in this scope.
        importlib.import_module("deepspeed.comm.torch").build_shm_op = lambda: None
    from accelerate import PartialState

    state = PartialState(backend="gloo")
    return CpuLaunch(world_size=state.num_processes, deepspeed=deepspeed, own_rendezvous=not launched)
