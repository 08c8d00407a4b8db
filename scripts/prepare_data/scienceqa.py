"""ScienceQA -> LLaVA training JSON + eval files (benchmark "scienceqa_img").

Source: lmms-lab/ScienceQA, config ScienceQA-IMG (train / validation / test; only questions with an image;
config ScienceQA-FULL and derek-thomas/ScienceQA have the same columns plus text-only questions). Columns
read: image, question, choices (list), answer (index into choices), hint, subject.

Question text as LLaVA-1.5 / lmms-eval list it: "Context: <hint>\\n" (when there is a hint), the question,
then "A. ...\\nB. ..." lines; the reference and training target is the option letter; the question row keeps
"choices" (for mc_accuracy's checks) and "subject". Rows have no id, so ids are scienceqa-<split>-<row>.

    python -m scripts.prepare_data.scienceqa --split test [--dataset PATH_OR_ID] [--config ScienceQA-FULL]
"""

from __future__ import annotations

from scripts.prepare_data.common import DatasetSpec, Item, main, option_letters


def add_arguments(parser):
    parser.add_argument("--images-only", action="store_true", help="skip questions without an image")


def convert(row, index, args, resources):
    if row["image"] is None and args.images_only:
        return
    choices = [str(c) for c in row["choices"]]
    answer = int(row["answer"])
    if not 0 <= answer < len(choices):
        raise ValueError(f"row {index}: answer index {answer} outside {len(choices)} choices")
    hint = (row.get("hint") or "").strip()
    text = (f"Context: {hint}\n" if hint else "") + f"{row['question']}\n{option_letters(choices)}"
    letter = chr(ord("A") + answer)
    yield Item(id=f"scienceqa-{args.split}-{index:05d}", text=text, answers=[letter], image=row["image"],
               extra={"choices": choices, "subject": row.get("subject") or ""})


SPEC = DatasetSpec(task="scienceqa", benchmark="scienceqa_img", default_dataset="lmms-lab/ScienceQA",
                   default_config="ScienceQA-IMG", default_split="test",
                   columns=("image", "question", "choices", "answer", "hint"), convert=convert,
                   add_arguments=add_arguments)

if __name__ == "__main__":
    main(SPEC, __doc__)
