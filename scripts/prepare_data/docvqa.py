"""DocVQA -> LLaVA training JSON + eval files (benchmark "docvqa", scored with ANLS).

Source: lmms-lab/DocVQA, config DocVQA (train / validation / test; the test split has no public answers and
is rejected). Columns read: questionId, question, image, docId, answers (list). Every reference answer goes
to the annotation file; the first is the training target. Images are named by docId (one page each).

    python -m scripts.prepare_data.docvqa --split validation [--dataset PATH_OR_ID]
"""

from __future__ import annotations

from scripts.prepare_data.common import DatasetSpec, Item, main


def convert(row, index, args, resources):
    yield Item(id=str(row["questionId"]), text=row["question"], answers=list(row["answers"] or []),
               image=row["image"], image_name=f"doc{row['docId']}")


SPEC = DatasetSpec(task="docvqa", benchmark="docvqa", default_dataset="lmms-lab/DocVQA", default_config="DocVQA",
                   default_split="validation", columns=("questionId", "question", "image", "docId", "answers"),
                   convert=convert)

if __name__ == "__main__":
    main(SPEC, __doc__)
