"""Evaluate a `--method individual` run: each task's adapter on its own task's benchmark only, joined into the
one result file of the "individual" table row.

    python scripts/eval_individual.py --individual-dir OUT --model-base BASE \\
        --task-benchmarks vqa=minimix_vqa,ocr=minimix_ocr,caption=minimix_caption,mcq=minimix_mcq \\
        --output-dir RES [--seed S] [any other eval.run flag: --data-root, --batch-size, --limit, ...]

Writes RES/<task>/ (eval.run's answers and scores.json for that task's adapter) and RES/scores.json, the input
of `python -m eval.tables`. One process: the tasks' models are loaded one after the other.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from eval import run as eval_run
from eval.tables import combine_scores
from llava_thanora.recipes.individual import read_individual


def task_benchmarks(value: str, tasks: list[str]) -> dict[str, str]:
    """`task=bench,...` -> {task: bench}; every task of the run needs exactly one benchmark."""
    pairs = dict(item.split("=", 1) for item in value.split(",") if item)
    unknown, missing = sorted(set(pairs) - set(tasks)), sorted(set(tasks) - set(pairs))
    if unknown or missing:
        raise SystemExit(f"--task-benchmarks: tasks {unknown} are not in the run, tasks {missing} have no benchmark "
                         f"(the run's tasks: {tasks})")
    return pairs


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--individual-dir", required=True, help="The --output_dir of a --method individual run.")
    ap.add_argument("--task-benchmarks", required=True, help="task=benchmark pairs, comma-separated.")
    ap.add_argument("--output-dir", required=True)
    ap.add_argument("--method", default="individual", help="Row name in eval.tables.")
    args, eval_flags = ap.parse_known_args(argv)
    adapters = read_individual(args.individual_dir)
    out = Path(args.output_dir)
    files = []
    for task, bench in task_benchmarks(args.task_benchmarks, list(adapters)).items():
        eval_run.main(["--model-path", adapters[task], "--benchmarks", bench, "--output-dir", str(out / task),
                       "--method", args.method, *eval_flags])
        files.append(str(out / task / "scores.json"))
    result = combine_scores(files, args.method)
    (out / "scores.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({bench: s["score"] for bench, s in result["scores"].items()}))
    return result


if __name__ == "__main__":
    main()
