"""TextVQA -> LLaVA training JSON + eval files (benchmarks "textvqa" and "textvqa_lmms", VQA soft accuracy).

Source: lmms-lab/textvqa (train / validation / test; test answers are not public). Columns read: question_id,
question, image_id, image, answers (10 per question), ocr_tokens. All 10 answers are references; the training
target is the most frequent one.

Two wordings of every question, one per reference protocol:

- ``<split>_questions.jsonl`` (benchmark "textvqa", and the training JSON): LLaVA-1.5's, as in its
  ``llava_textvqa_val_v051_ocr.jsonl``: the question with its first letter capitalized, then
  "\\nReference OCR token: " and the image's OCR tokens joined by ", " in the source's own casing and order
  (the line is left out when an image has none). LLaVA-1.5 reports TextVQA with these tokens (61.3 for
  llava-1.5-13b; about 48.7 without them).
- ``<split>_noocr_questions.jsonl`` (benchmark "textvqa_lmms"): lmms-eval's ``textvqa_val``, without OCR tokens:
  the question through Python's ``str.capitalize`` (first letter upper, the rest lower), as its
  ``textvqa_doc_to_text`` does.

With --no-ocr-tokens the training JSON (and the first file) leave the OCR line out as well.

    python -m scripts.prepare_data.textvqa --split validation [--dataset PATH_OR_ID] [--no-ocr-tokens]
"""

from __future__ import annotations

from scripts.prepare_data.common import DatasetSpec, Item, main, most_common

OCR_LINE = "\nReference OCR token: "


def add_arguments(parser):
    parser.add_argument("--no-ocr-tokens", action="store_true",
                        help="leave LLaVA-1.5's OCR-token line out of the training prompts and the first question file")


def llava_text(question: str, ocr_tokens, with_ocr: bool = True) -> str:
    """LLaVA-1.5's TextVQA question: first letter capitalized, then the OCR-token line when there are tokens."""
    text = question[:1].upper() + question[1:]
    tokens = [str(t) for t in ocr_tokens or []]
    return text + (OCR_LINE + ", ".join(tokens) if with_ocr and tokens else "")


def convert(row, index, args, resources):
    if "ocr_tokens" not in row and not args.no_ocr_tokens:
        raise ValueError(f"row {index}: no 'ocr_tokens' column (LLaVA-1.5's TextVQA prompt lists them); "
                         "pass --no-ocr-tokens to convert without them")
    answers = list(row["answers"] or [])
    yield Item(id=str(row["question_id"]), text=llava_text(row["question"], row.get("ocr_tokens"), not args.no_ocr_tokens),
               answers=answers, targets=[most_common(answers)] if answers else [], image=row["image"],
               image_name=str(row["image_id"]), variants={"noocr": row["question"].capitalize()})


SPEC = DatasetSpec(task="textvqa", benchmark="textvqa", default_dataset="lmms-lab/textvqa", default_split="validation",
                   columns=("question_id", "question", "image_id", "image", "answers"), convert=convert,
                   add_arguments=add_arguments)

if __name__ == "__main__":
    main(SPEC, __doc__)
