"""OCR-VQA -> LLaVA training JSON + eval files (benchmark "ocrvqa", normalized exact match).

Source: howard-hou/OCR-VQA (train / validation / test), one row per book cover with parallel lists of
questions and answers. Columns read: image, image_id, questions, answers. Each question becomes an item
<image_id>_<k> whose single reference (and training target) is its answer.

    python -m scripts.prepare_data.ocrvqa --split test [--dataset PATH_OR_ID]
"""

from __future__ import annotations

from scripts.prepare_data.common import DatasetSpec, Item, main


def convert(row, index, args, resources):
    questions, answers = list(row["questions"]), list(row["answers"])
    if len(questions) != len(answers):
        raise ValueError(f"row {index} (image {row['image_id']}): {len(questions)} questions "
                         f"but {len(answers)} answers")
    for k, (question, answer) in enumerate(zip(questions, answers)):
        yield Item(id=f"{row['image_id']}_{k}", text=question, answers=[answer], image=row["image"],
                   image_name=str(row["image_id"]))


SPEC = DatasetSpec(task="ocrvqa", benchmark="ocrvqa", default_dataset="howard-hou/OCR-VQA", default_split="test",
                   columns=("image", "image_id", "questions", "answers"), convert=convert)

if __name__ == "__main__":
    main(SPEC, __doc__)
