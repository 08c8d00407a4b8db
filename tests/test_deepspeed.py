"""`deepspeed --num_gpus 2 train.py --deepspeed zero3.json` on CPU (gloo): it trains, really partitions, and saves
a complete, loadable adapter gathered from the partitions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]


def deepspeed_launch(args: list[str], timeout: int = 240) -> subprocess.CompletedProcess:
    """Launch train.py on 2 CPU ranks. One thread per rank: 2 ranks share 2 cores."""
    launcher = Path(sys.executable).parent / "deepspeed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("WORLD_SIZE", None)
    cmd = [str(launcher), "--num_gpus", "2", "--master_port", str(29500 + os.getpid() % 1000), "train.py",
           "--deepspeed", "zero3.json", *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc


@pytest.mark.slow
def test_zero3_two_ranks_train_partition_and_save(tiny_model, color_data, tmp_path):
    data_path, image_folder = color_data
    out = tmp_path / "ds"
    proc = deepspeed_launch(["--model_name_or_path", tiny_model, "--data_path", data_path, "--image_folder",
                             image_folder, "--output_dir", str(out), "--max_steps", "6", "--save_steps", "3",
                             "--per_device_train_batch_size", "2", "--learning_rate", "3e-3", "--lora_r", "8",
                             "--lora_alpha", "16", "--logging_steps", "1", "--tune_mm_projector",
                             "--report_to", "none"])
    log = proc.stdout + proc.stderr
    held = [(int(a.replace(",", "")), int(b.replace(",", "")))
            for a, b in re.findall(r"this rank holds ([\d,]+) of ([\d,]+) base-model elements", log)]
    assert len(held) == 2, "both ranks must report their partition"
    for mine, total in held:
        assert mine < 0.6 * total, f"rank holds {mine} of {total}: ZeRO-3 did not partition"
    for d in (out / "checkpoint-3", out):
        adapter = load_file(d / "adapter_model.safetensors")
        assert adapter and all(v.numel() > 0 for v in adapter.values()), "gathered adapter tensors must be full-size"
        assert load_file(d / "non_lora_trainables.safetensors")
    losses = [float(x) for x in re.findall(r"'loss': '([\d.]+)'", log)]
    assert len(losses) >= 6 and min(losses[-2:]) < losses[0]
