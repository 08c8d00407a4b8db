"""The reproduction recipes: the table's rows cover every method, the llava-1.5 recipes pass train.py's parser
with LLaVA's task-LoRA settings, and the tiny chain (minimix -> train.py -> eval.run -> eval.tables) really runs."""

from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# A short chain that still takes every path of the script: a training row with ablation flags, the individual
# row (per-task training and per-task evaluation) and a merge row that depends on it.
CHAIN_ROWS = ["individual", "merge_ties", "thanora_no_spr"]


def bash(script: str, **env) -> str:
    proc = subprocess.run(["bash", "-c", script], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def table_rows() -> dict[str, str]:
    """{row: the --method that trains it}, as scripts/table_rows.sh defines them."""
    out = bash("source scripts/table_rows.sh; for r in $TABLE_ROWS; do echo $r $(row_method $r); done")
    return dict(line.split() for line in out.splitlines())


def test_table_rows_cover_every_method():
    from llava_thanora.cli import registered

    rows = table_rows()
    assert set(rows.values()) == set(registered()) - {"projector", "full"}  # the pre-training stages
    ablations = {"thanora_activation", "thanora_uniform", "thanora_random_init", "thanora_no_hasi", "thanora_no_spr",
                 "thanora_penalty_A", "thanora_penalty_B", "thanora_no_coop"}
    assert {r for r, m in rows.items() if m == "thanora"} == {"thanora", *ablations}
    order = list(rows)
    assert all(order.index("individual") < order.index(r) for r in rows if r.startswith("merge_"))
    for method in set(rows.values()):
        assert (REPO / f"scripts/v1_5/finetune_{method}.sh").is_file(), method


@pytest.mark.parametrize("mix,n_tasks", [("2task", 2), ("4task", 4)])
def test_v1_5_recipes_parse_with_llava_task_lora_settings(mix, n_tasks):
    from llava_thanora.cli import registered
    from llava_thanora.train.args import parse_args

    # PY / LAUNCH = echo: the chain prints every command instead of running it
    out = bash("bash scripts/v1_5/reproduce_table.sh", PY="echo", LAUNCH="echo", MIX=mix, CKPT="/nonexistent")
    commands = [shlex.split(line) for line in out.splitlines() if line.startswith("train.py")]
    rows = table_rows()
    assert len(commands) == len(rows)
    methods = []
    for argv in commands:
        zero = argv[argv.index("--deepspeed") + 1] if "--deepspeed" in argv else None
        for flag in ("--deepspeed", "--bf16"):  # DeepSpeed and bf16 need a GPU to be set up
            if flag in argv:
                del argv[argv.index(flag): argv.index(flag) + 2]
        parsed = parse_args(argv[1:], registered())
        methods.append(parsed.model.method)
        assert len(parsed.data.data_path.split(",")) == n_tasks
        if parsed.model.method.startswith("merge_"):
            assert zero is None and parsed.method.merge_individual_dir.endswith("/individual")
            continue
        m, t = parsed.model, parsed.training
        alpha, dropout = (128, 0.0) if m.method in ("pissa", "corda") else (256, 0.05)  # their references' setting
        assert (m.lora_r, m.lora_alpha, m.lora_dropout) == (128, alpha, dropout)
        assert (m.mm_projector_lr, m.tune_mm_projector) == (2e-5, True)
        assert (t.learning_rate, t.num_train_epochs, t.lr_scheduler_type, t.warmup_steps) == (2e-4, 3, "cosine", 0.03)
        assert (t.model_max_length, t.gradient_checkpointing) == (2048, True)
        assert parsed.data.conv_mode == "llava_v1"  # LLaVA-1.5's own conversation format
        assert zero == ("zero2.json" if m.method in ("pissa", "corda") else "zero3.json")
    assert methods == list(rows.values())
    assert sum(line.startswith("-m eval.run") for line in out.splitlines()) == len(rows) - 1
    assert sum(line.startswith("scripts/eval_individual.py") for line in out.splitlines()) == 1


def test_compare_plan_runs_the_papers_table_on_validation_then_test(tmp_path):
    """scripts/tiny/compare.sh (DRY_RUN prints its commands): >= 5 seeds of every row, each training command parses,
    every run is scored on both splits, merge weights are chosen from validation scores only, the rank sweep and
    the T = 2 mixture are there, and the tables compare every row with LoRA."""
    from llava_thanora.cli import registered
    from llava_thanora.train.args import parse_args

    # an empty OUT: the script skips the steps whose outputs exist, as in a work tree that has run some of them
    out = bash("bash scripts/tiny/compare.sh", DRY_RUN="1", PY="python", OUT=str(tmp_path / "compare"))
    lines = out.splitlines()
    trains = [shlex.split(line)[2:] for line in lines if line.startswith("python train.py")]
    rows = ["base", *table_rows()]
    runs, planned = {}, set()
    for argv in trains:
        part, row, seed = Path(argv[argv.index("--output_dir") + 1]).parts[-3:]
        assert argv[argv.index("--seed") + 1] == seed.removeprefix("seed")
        planned.add((part, row, seed))
        if seed in ("seed0", "seed2", "seed4"):  # the parser is slow to build: enough seeds to see the pattern
            runs[(part, row, seed)] = parse_args(argv, registered())
    seeds = {f"seed{s}" for s in range(5)}
    trained = set(rows) - {"base", "merge_ta", "merge_ties", "merge_dare"}
    assert {(r, s) for p, r, s in planned if p == "main"} == {(r, s) for r in trained for s in seeds}
    # every merge row at every weight, from that seed's individual adapters
    merges = {(p, r) for p, r, _ in planned if r.startswith("merge_")}
    assert merges == {(f"merge_w{w}", r) for w in ("0.25", "0.5", "0.75", "1.0")
                      for r in ("merge_ta", "merge_ties", "merge_dare")}
    for (p, r, s), parsed in runs.items():
        if r.startswith("merge_"):
            w = p.removeprefix("merge_w")
            assert parsed.method.merge_weights == ",".join([w] * 4)
            assert parsed.method.merge_individual_dir.endswith(f"runs/main/individual/{s}")
            if r != "merge_ta":
                assert parsed.method.merge_svd_rank == 0  # full rank: no SVD undoing the pruning
    assert runs[("main", "thanora", "seed0")].method.thanora_init == "context"  # the paper's ThanoRA
    assert runs[("main", "thanora_activation", "seed0")].method.thanora_init == "activation"
    # the same recipe as every other row: rank, steps, data, frozen projector
    lora = runs[("main", "lora", "seed0")]
    for (p, r, s), parsed in runs.items():
        if p in ("main",) or p.startswith("merge_w"):
            assert parsed.model.lora_r == lora.model.lora_r and parsed.data.data_path == lora.data.data_path
    assert {runs[(f"r{k}", "thanora", "seed0")].model.lora_r for k in (8, 16, 32, 64)} == {8, 16, 32, 64}
    assert {runs[(f"r{k}", "lora", "seed2")].model.lora_r for k in (8, 16, 32, 64)} == {8, 16, 32, 64}
    t2 = runs[("t2", "thanora", "seed4")].data.data_path.split(",")
    assert [Path(f).stem for f in t2] == ["ocr", "mcq"]
    # each evaluation's split is its data root (val/ for validation); every row is scored on both, merges on
    # validation at every weight and on test at the chosen one
    scored = set()
    for a in (shlex.split(line) for line in lines if " -m eval.run " in line or "eval_individual.py" in line):
        split, part, name = Path(a[a.index("--output-dir") + 1]).parts[-3:]
        assert (split == "val") == a[a.index("--data-root") + 1].endswith("/val"), a
        scored.add((split, part, name))
    for row in rows:
        for s in range(5):
            assert ("test", "main", f"{row}_s{s}") in scored
            if row.startswith("merge_"):
                assert all(("val", f"merge_w{w}", f"{row}_s{s}") in scored for w in ("0.25", "0.5", "0.75", "1.0"))
            else:
                assert ("val", "main", f"{row}_s{s}") in scored
    assert "scripts/tiny/pick_on_val.py" in (REPO / "scripts/tiny/compare.sh").read_text()
    compared = [line for line in lines if "-m eval.compare" in line and "--baseline lora" in line]
    assert len(compared) == 2 * (2 + 4 + 1)  # val and test of: main (twice: before and after the merge rows), r*, t2
    assert "_vs_lora_test" in out and "_vs_lora_val" in out


def test_compare_reruns_an_interrupted_evaluation(tmp_path):
    """A scores.json that lacks some benchmark (eval.run writes it after each one) is not a finished step."""
    out = tmp_path / "compare"
    every = ["minimix_vqa", "minimix_ocr", "minimix_caption", "minimix_mcq"]
    for split, benches in (("val", every[:1]), ("test", every)):
        (out / "eval" / split / "main" / "lora_s0").mkdir(parents=True)
        (out / "eval" / split / "main" / "lora_s0" / "scores.json").write_text(
            json.dumps({"method": "lora", "seed": 0, "scores": {b: {"score": 50.0} for b in benches}}))
    plan = bash("bash scripts/tiny/compare.sh", DRY_RUN="1", PY=sys.executable, OUT=str(out), PARTS="main",
                ROWS="lora", SEEDS="0")
    evals = [line for line in plan.splitlines() if " -m eval.run " in line]
    assert len(evals) == 1 and "/eval/val/main/lora_s0" in evals[0]


@pytest.mark.slow
def test_tiny_chain_puts_every_method_in_a_row(tiny_model, tmp_path):
    from llava_thanora.data.minimix.build import build_minimix
    from llava_thanora.data.minimix.writer import MinimixConfig

    data = tmp_path / "minimix"
    build_minimix(MinimixConfig(output_dir=data, train_per_task=16, test_per_task=3, pretrain_samples=4))
    out = tmp_path / "out"
    bash(f"bash scripts/tiny/reproduce_table.sh {out}", PY=sys.executable, BASE=tiny_model, DATA=str(data),
         METHODS=" ".join(CHAIN_ROWS), STEPS="2", LIMIT="2", R="4", PREVIEW="4")

    with open(out / "table.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [row["method"] for row in table] == CHAIN_ROWS
    benches = ["minimix_vqa", "minimix_ocr", "minimix_caption", "minimix_mcq"]
    for row in table:
        for bench in benches:
            assert 0.0 <= float(row[bench]) <= 100.0, (row["method"], bench)
    # the individual row: each task's adapter answered its own task's questions only
    for task in ("vqa", "ocr", "caption", "mcq"):
        scores = json.loads((out / f"results/individual/{task}/scores.json").read_text())["scores"]
        assert list(scores) == [f"minimix_{task}"] and scores[f"minimix_{task}"]["n"] == 2
    assert json.loads((out / "merge_ties/merge.json").read_text())["tasks"] == ["caption", "mcq", "ocr", "vqa"]
