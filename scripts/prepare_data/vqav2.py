"""VQA v2 -> LLaVA training JSON + eval files (benchmark "vqav2", official VQA v2 accuracy).

Source: lmms-lab/VQAv2 (validation / testdev / test; only validation has public answers here; for training
use a copy of the train split with the same columns). Columns read: question_id, question, image_id, image,
answers (10 {"answer", ...} records), multiple_choice_answer (the training target, VQA's consensus answer),
answer_type and question_type (kept in the question row for ``eval.score --group-by answer_type``).

    python -m scripts.prepare_data.vqav2 --split validation [--dataset PATH_OR_ID]
"""

from __future__ import annotations

from scripts.prepare_data.common import DatasetSpec, Item, main


def convert(row, index, args, resources):
    answers = [a["answer"] for a in row["answers"] or []]
    yield Item(id=str(row["question_id"]), text=row["question"], answers=answers,
               targets=[row["multiple_choice_answer"]] if answers else [], image=row["image"],
               image_name=str(row["image_id"]),
               extra={"answer_type": row.get("answer_type") or "", "question_type": row.get("question_type") or ""})


SPEC = DatasetSpec(task="vqav2", benchmark="vqav2", default_dataset="lmms-lab/VQAv2", default_split="validation",
                   columns=("question_id", "question", "image_id", "image", "answers", "multiple_choice_answer"),
                   convert=convert)

if __name__ == "__main__":
    main(SPEC, __doc__)
