"""Make `deepspeed train.py ...` and `python train.py ...` work on CPU-only machines (gloo) as well as on GPUs.

Three things go wrong on a CPU with deepspeed 0.19 / accelerate 1.15 / transformers 5, each measured here:
1. accelerate does not see the launcher's world size and reports 1 process, so DeepSpeed asserts on the batch
   size. Creating a gloo `PartialState` first and telling TrainingArguments to use it fixes that.
2. DeepSpeed JIT-compiles a shared-memory all-reduce op on first CPU use (about a minute of g++). gloo does the
   same job, so the build is skipped (results are unchanged).
3. `python train.py --deepspeed ...` without a launcher looks for mpi4py; a one-process rendezvous avoids it.
On a machine with CUDA none of this is applied.
"""

from __future__ import annotations

import importlib
import os
import socket
import sys


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wants_deepspeed(argv: list[str]) -> bool:
    return any(a == "--deepspeed" or a.startswith("--deepspeed=") for a in argv)


def apply_cpu_fixes(argv: list[str] | None = None) -> bool:
    """Prepare the process for a CPU run; returns True when the gloo state was configured (then the
    TrainingArguments must be created with `accelerator_config={"use_configured_state": True}`)."""
    import torch

    argv = sys.argv[1:] if argv is None else argv
    if torch.cuda.is_available() or "--no_cpu_distributed_fixes" in argv:
        return False
    launched = "WORLD_SIZE" in os.environ
    if not (launched or wants_deepspeed(argv)):
        return False  # plain single-process CPU run: nothing to fix
    if not launched:  # `python train.py --deepspeed ...`: a one-process group instead of an MPI lookup
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    os.environ.setdefault("LOCAL_SIZE", os.environ["WORLD_SIZE"])
    if wants_deepspeed(argv):
        os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
        # `deepspeed.comm.torch` is reached through importlib: `import deepspeed.comm.torch` would bind the name
        # `torch` to that module in this scope.
        importlib.import_module("deepspeed.comm.torch").build_shm_op = lambda: None
    from accelerate import PartialState

    PartialState(backend="gloo")
    return True
