"""ChartQA -> LLaVA training JSON + eval files (benchmark "chartqa", relaxed accuracy).

Source: HuggingFaceM4/ChartQA (train / val / test). Columns read: image, query, label (list of answers),
human_or_machine (class label 0 = human-written, 1 = machine-generated "augmented" question). The question
row keeps "subset" ("human" / "augmented"), so ``eval.score --group-by subset`` gives the two halves the
ChartQA paper reports. Rows have no id, so ids are chartqa-<split>-<row>; a chart shared by several questions
is stored once (images are named by content).

    python -m scripts.prepare_data.chartqa --split test [--dataset PATH_OR_ID]
"""

from __future__ import annotations

from scripts.prepare_data.common import DatasetSpec, Item, main

SUBSETS = {0: "human", 1: "augmented", "human": "human", "machine": "augmented"}


def convert(row, index, args, resources):
    subset = row["human_or_machine"]
    if subset not in SUBSETS:
        raise ValueError(f"row {index}: unknown human_or_machine value {subset!r}")
    yield Item(id=f"chartqa-{args.split}-{index:05d}", text=row["query"], answers=[str(a) for a in row["label"]],
               image=row["image"], extra={"subset": SUBSETS[subset]})


SPEC = DatasetSpec(task="chartqa", benchmark="chartqa", default_dataset="HuggingFaceM4/ChartQA",
                   default_split="test", columns=("image", "query", "label", "human_or_machine"), convert=convert)

if __name__ == "__main__":
    main(SPEC, __doc__)
