"""The commonsense-reasoning eight in the commonsense-170k format -> text-only training JSON + eval files.

Source: the JSON files of LLM-Adapters (github.com/AGI-Edgerunners/LLM-Adapters), which DoRA and MTL-LoRA train
and evaluate on: `dataset/<BoolQ|piqa|social_i_qa|hellaswag|winogrande|ARC-Easy|ARC-Challenge|openbookqa>/test.json`
and the mixed training set `commonsense_170k.json`. Each row is {"instruction", "input", "output", "answer"}: the
instruction ends with its answer format ("Answer format: true/false"), `output` is the training target ("the
correct answer is true") and `answer` the label. Pass the file with --dataset (a local .json; no hub copy is
needed) and the task with --task; the question rows keep the labels parsed from the answer format (what
`commonsense_accuracy` picks the first of).

    python -m scripts.prepare_data.commonsense --task boolq --dataset LLM-Adapters/dataset/boolq/test.json --split test
    python -m scripts.prepare_data.commonsense --task commonsense170k --dataset commonsense_170k.json --split train

`--task commonsense170k` converts the mixture as one task (its rows name no source dataset; the answer formats of
ARC, OpenBookQA and SIQA look alike). For a multi-task run give each dataset's own train file its --task.
"""

from __future__ import annotations

import re
import sys

from eval.metrics.reasoning import COMMONSENSE_LABELS
from scripts.prepare_data.common import DatasetSpec, Item, main

TASKS = (*COMMONSENSE_LABELS, "commonsense170k")
_FORMAT = re.compile(r"Answer format:\s*([^\n]+?)\s*$")


def labels_of(instruction: str, task: str) -> list[str]:
    """The labels the instruction's answer format lists ("answer1/answer2/..."), else the task's known ones."""
    found = _FORMAT.search(instruction.strip())
    if found:
        return [label.strip() for label in found.group(1).split("/") if label.strip()]
    if task in COMMONSENSE_LABELS:
        return list(COMMONSENSE_LABELS[task])
    raise ValueError("the instruction states no 'Answer format: ...'")


def add_arguments(parser):
    parser.add_argument("--task", required=True, choices=TASKS, help="which of the eight (or the 170k mixture)")


def convert(row, index, args, resources):
    instruction, extra_input = str(row["instruction"]).strip(), str(row.get("input") or "").strip()
    labels = labels_of(instruction, args.task)
    answer = str(row["answer"]).strip()
    if answer not in labels:
        raise ValueError(f"row {index}: answer {answer!r} is not one of its labels {labels}")
    text = f"{instruction}\n{extra_input}" if extra_input else instruction
    yield Item(id=f"{args.task}-{args.split}-{index:06d}", text=text, answers=[answer],
               targets=[str(row["output"]).strip()], extra={"labels": labels})


def spec(task: str) -> DatasetSpec:
    return DatasetSpec(task=task, benchmark=task if task in COMMONSENSE_LABELS else "boolq",
                       default_dataset=f"dataset/{task}/test.json", default_split="test",
                       columns=("instruction", "output", "answer"), convert=convert, image_columns=(),
                       add_arguments=add_arguments)


if __name__ == "__main__":
    chosen = sys.argv[sys.argv.index("--task") + 1] if "--task" in sys.argv[:-1] else "boolq"
    main(spec(chosen if chosen in TASKS else "boolq"), __doc__)
