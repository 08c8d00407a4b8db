"""`bash bench/gpu_suite.sh --smoke`: the prepared GPU suite runs every step on CPU with tiny shapes, so it cannot rot
between the sessions that have a GPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_suite_smoke_prints_one_markdown_block():
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "2"}
    proc = subprocess.run(["bash", "bench/gpu_suite.sh", "--smoke"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert out.startswith("### GPU suite: CPU (smoke")
    for title in ("Training step time, ThanoRA / LoRA", "Peak memory of the training steps",
                  "Initialization, ThanoRA vs CorDA", "Batched generation"):
        assert f"**{title}**" in out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert any(r.startswith("| thanora T=4 |") for r in rows) and any(r.startswith("| lora |") for r in rows)
    assert any(r.startswith("| ThanoRA T=2, init=activation, cov_dtype=float64 |") for r in rows)
    assert any(r.startswith("| CorDA (peft") for r in rows)
    assert "answers identical across batch sizes: True" in out
    assert out.rstrip().splitlines()[-1].startswith("Total ")
    assert "Traceback" not in out and "WARNING" not in out  # library chatter goes to the log, not the block
