"""ThanoRA under 2-rank ZeRO-3 (CPU, gloo) for Qwen2-VL (dynamic resolution, mixed image and text-only batches:
the family's blank vision pass keeps the ranks' gathers in step) and for a text-only Llama, in one launch."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import write_color_task, write_count_task

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_zero3_thanora_for_qwen2_vl_and_a_text_only_llama(tmp_path):
    from llava_thanora.model.tiny import TinyConfig, build_tiny

    color, count = write_color_task(tmp_path, n=12), write_count_task(tmp_path, n=12)
    runs = {}
    for family, data in (("qwen2_vl", f"{color},{count}"), ("llama", str(count))):
        model = build_tiny(tmp_path / family, TinyConfig(family=family))
        runs[family] = ["--model_name_or_path", str(model), "--data_path", data, "--image_folder",
                        str(tmp_path / "images"), "--output_dir", str(tmp_path / f"out-{family}"), "--method", "thanora",
                        "--thanora_preview_samples", "4", "--deepspeed", "zero3.json", "--max_steps", "3",
                        "--per_device_train_batch_size", "2", "--lora_r", "4", "--lora_alpha", "8",
                        "--learning_rate", "1e-2", "--logging_steps", "1", "--save_strategy", "no",
                        "--report_to", "none", "--seed", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "RUNS": json.dumps(list(runs.values())),
           "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("WORLD_SIZE", None)
    cmd = [str(Path(sys.executable).parent / "deepspeed"), "--num_gpus", "2", "--master_port",
           str(29700 + os.getpid() % 200), "tests/zero3_runs.py"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    held = [(int(a.replace(",", "")), int(b.replace(",", "")))
            for a, b in re.findall(r"this rank holds ([\d,]+) of ([\d,]+) base-model elements", log)]
    assert len(held) == 4 and all(mine < 0.6 * total for mine, total in held), held  # 2 ranks x 2 models
    from llava_thanora.methods.loading import load_trained

    for family in runs:
        out = tmp_path / f"out-{family}"
        adapter = load_file(out / "adapter_model.safetensors")
        assert adapter and all(v.numel() > 0 for v in adapter.values()), "gathered adapter tensors are full-size"
        state = json.loads((out / "thanora.json").read_text())
        assert state["tasks"] == (["color", "count"] if family == "qwen2_vl" else ["count"])
        model, _, kind = load_trained(str(out), str(tmp_path / family))
        assert kind == "peft"
