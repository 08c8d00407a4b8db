"""TextVQA -> LLaVA training JSON + eval files (benchmark "textvqa", VQA soft accuracy).

Source: lmms-lab/textvqa (train / validation / test; test answers are not public). Columns read:
question_id, question, image_id, image, answers (10 per question), ocr_tokens (with --ocr-tokens). All 10
answers are references; the training target is the most frequent one. With --ocr-tokens the text gets
LLaVA-1.5's "\\nReference OCR token: a, b, c" line (LLaVA-1.5 reports TextVQA with it).

    python -m scripts.prepare_data.textvqa --split validation [--dataset PATH_OR_ID] [--ocr-tokens]
"""

from __future__ import annotations

from scripts.prepare_data.common import DatasetSpec, Item, main, most_common


def add_arguments(parser):
    parser.add_argument("--ocr-tokens", action="store_true", help="append the dataset's OCR tokens to the question")


def convert(row, index, args, resources):
    text = row["question"]
    if args.ocr_tokens and row.get("ocr_tokens"):
        text += "\nReference OCR token: " + ", ".join(row["ocr_tokens"])
    answers = list(row["answers"] or [])
    yield Item(id=str(row["question_id"]), text=text, answers=answers,
               targets=[most_common(answers)] if answers else [], image=row["image"],
               image_name=str(row["image_id"]))


SPEC = DatasetSpec(task="textvqa", benchmark="textvqa", default_dataset="lmms-lab/textvqa", default_split="validation",
                   columns=("question_id", "question", "image_id", "image", "answers"), convert=convert,
                   add_arguments=add_arguments)

if __name__ == "__main__":
    main(SPEC, __doc__)
