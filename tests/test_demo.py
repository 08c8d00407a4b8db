"""`make demo`'s script, shortened by its flags (tiny data, the tiny model as base, a few steps), runs end to end
and produces the table (rows base / LoRA / ThanoRA, the 4 tasks + average) and the figures."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_shortened_demo(tiny_model, tmp_path):
    out = tmp_path / "demo"
    env = {**os.environ, "PY": sys.executable, "DATA": str(tmp_path / "minimix"), "BASE": tiny_model,
           "OUT": str(out), "STEPS": "3", "RANK": "8", "LIMIT": "3", "TRAIN_PER_TASK": "12", "TEST_PER_TASK": "3",
           "OMP_NUM_THREADS": "2"}
    # A rerun retrains into existing eval folders: answers left there by an earlier run must be replaced.
    stale = out / "eval" / "base" / "minimix_vqa" / "answers.jsonl"
    stale.parent.mkdir(parents=True)
    stale.write_text('{"question_id": "vqa-test-00000", "text": "stale", "run": "an earlier run"}\n')
    proc = subprocess.run(["bash", str(REPO / "scripts/demo.sh")], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    table = (out / "table.md").read_text()
    header = table.splitlines()[0]
    for column in ("minimix_vqa", "minimix_ocr", "minimix_caption", "minimix_mcq", "Avg"):
        assert column in header
    rows = [line.split("|")[1].strip() for line in table.splitlines()[2:] if line.startswith("|")]
    assert rows == ["base", "lora", "thanora"]
    for name in ("table.csv", "table.tex", "rank_allocation.png", "loss_curves.png", "thanora/thanora.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert "stale" not in stale.read_text() and len(stale.read_text().splitlines()) == 3
    lines = proc.stdout.splitlines()
    tail = lines[lines.index("Outputs:"):]  # the final lines say where every output is
    assert len(tail) == 7 and any(str(out / "table.md") in line for line in tail)


@pytest.mark.parametrize("script", ["scripts/demo.sh", "scripts/tiny/compare.sh", "scripts/tiny/reproduce_table.sh"])
@pytest.mark.parametrize("case", ["old_data", "other_base", "old_recipe", "other_recipe"])
def test_demo_refuses_stale_cached_data_or_base(tmp_path, case, script):
    """A cached minimix of another generator version, or a cached base pretrained on another build of the data or
    by another recipe (an older pretrain_base.sh, or other knobs), stops the demo (and the comparison drivers)
    with a message that says what to delete, instead of silently stale numbers."""
    from llava_thanora.data.minimix import GENERATOR_VERSION
    data, base = tmp_path / "minimix", tmp_path / "base"
    (data / "val").mkdir(parents=True)
    base.mkdir()
    (base / "config.json").write_text("{}")
    version = "1.0" if case == "old_data" else GENERATOR_VERSION
    (data / "manifest.json").write_text(f'{{"generator_version": "{version}"}}')
    stamp = "0" * 64 + "\n"
    if case in ("old_recipe", "other_recipe"):  # the right data, another recipe
        stamp = hashlib.sha256((data / "manifest.json").read_bytes()).hexdigest() + "\n"
    (base / "minimix_manifest.sha256").write_text(stamp)
    if case == "other_recipe":
        (base / "tiny_base_recipe.txt").write_text("recipe 2 vision_steps 10 stage1_steps 50 stage2_steps 500 "
                                                  "stage2_lr 1e-3\n")
    env = {**os.environ, "PY": sys.executable, "DATA": str(data), "BASE": str(base), "OUT": str(tmp_path / "out")}
    proc = subprocess.run(["bash", str(REPO / script)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    if case == "old_data":
        assert f"built by minimix generator 1.0; this code builds {GENERATOR_VERSION}" in proc.stderr
    elif case == "other_base":
        assert f"{base} was pretrained on another build of {data}" in proc.stderr
    else:
        older = ("recipe 2 vision_steps 10 stage1_steps 50 stage2_steps 500 stage2_lr 1e-3" if case == "other_recipe"
                 else "one older than tiny_base_recipe.txt")
        assert f"{base} was pretrained by another recipe ({older}); this code builds: recipe " in proc.stderr
    assert not (tmp_path / "out").exists()  # nothing was trained
