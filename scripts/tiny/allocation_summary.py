"""Which task gets the most rank, per module type and layer depth, from a ThanoRA run's thanora.json.

Prints a Markdown table: one row per module type (q_proj, ..., down_proj), one column per language-model
layer, each cell the task with the largest rank there and its rank (ties list every tied task), plus each
task's total rank over the early and the late half of the layers (the paper's claim: image-heavy tasks
get more rank early, text-heavy ones late).

Usage: python scripts/tiny/allocation_summary.py playground/results/demo/thanora/thanora.json
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

LAYER = re.compile(r"\.layers\.(\d+)\.(?:\w+\.)?(\w+)$")


def summarise(allocation: dict) -> tuple[list[str], dict[str, dict[int, dict[str, int]]]]:
    """(tasks, ranks[module type][layer][task]) of the language model's adapted modules."""
    ranks: dict[str, dict[int, dict[str, int]]] = defaultdict(dict)
    for name, module in allocation["modules"].items():
        match = LAYER.search(name)
        if match is None or "vision" in name:
            continue
        layer, kind = int(match.group(1)), match.group(2)
        ranks[kind][layer] = {task: entry["rank"] for task, entry in module["tasks"].items()}
    if not ranks:
        raise ValueError("no language-model layer modules in the allocation file")
    return list(allocation["tasks"]), dict(ranks)


def markdown(tasks: list[str], ranks: dict[str, dict[int, dict[str, int]]]) -> str:
    layers = sorted({layer for per_layer in ranks.values() for layer in per_layer})
    lines = ["| module | " + " | ".join(f"layer {i}" for i in layers) + " |",
             "|---|" + "---|" * len(layers)]
    for kind in sorted(ranks):
        cells = []
        for layer in layers:
            per_task = ranks[kind].get(layer)
            if per_task is None:
                cells.append("—")
                continue
            top = max(per_task.values())
            cells.append("/".join(t for t in tasks if per_task[t] == top) + f" ({top})")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    half = len(layers) // 2
    early, late = set(layers[:half]), set(layers[half:])
    lines += ["", "| task | rank in layers " + f"{min(early)}–{max(early)}" + " | rank in layers "
              + f"{min(late)}–{max(late)}" + " |", "|---|---:|---:|"]
    for task in tasks:
        sums = [sum(per_layer[layer][task] for per_layer in ranks.values() for layer in per_layer if layer in part)
                for part in (early, late)]
        lines.append(f"| {task} | {sums[0]} | {sums[1]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("allocation", type=Path, help="thanora.json written by a ThanoRA training run")
    args = parser.parse_args(argv)
    tasks, ranks = summarise(json.loads(args.allocation.read_text()))
    print(markdown(tasks, ranks))


if __name__ == "__main__":
    main()
