"""IconQA -> LLaVA training JSON + eval files (benchmark "iconqa", normalized exact match).

Source: lmms-lab/ICON-QA (val / test; the original IconQA train split in the same columns works too).
Columns read: question_id, question, choices (comma-separated string, or a list), answer, query_image,
ques_type. Per sub-task:

  choose_txt     text = question + "A. ...\\nB. ..." + "Answer with the option's letter from the given choices
                 directly."; references = [letter, option text], target = letter. `answer` is the option text
                 (or, with --answer-is-index, its 0-based index).
  fill_in_blank  text = question + "Answer the question using a single word or phrase."; reference = answer.
  choose_img     skipped: its options are separate images and LLaVA takes one image per question.

The instruction is part of each question's text (the two sub-tasks need different ones), so the registry
entry has no prompt_suffix; the question row keeps "ques_type" for ``eval.score --group-by ques_type``.

    python -m scripts.prepare_data.iconqa --split test [--dataset PATH_OR_ID] [--answer-is-index]
"""

from __future__ import annotations

from scripts.prepare_data.common import DatasetSpec, Item, main, option_letters

LETTER = "Answer with the option's letter from the given choices directly."
SHORT = "Answer the question using a single word or phrase."


def add_arguments(parser):
    parser.add_argument("--answer-is-index", action="store_true",
                        help="choose_txt answers are 0-based option indices instead of option texts")


def convert(row, index, args, resources):
    kind, qid, answer = row["ques_type"], str(row["question_id"]), str(row["answer"]).strip()
    image = row["query_image"]
    if kind == "fill_in_blank":
        yield Item(id=qid, text=f"{row['question']}\n{SHORT}", answers=[answer], image=image,
                   extra={"ques_type": kind})
    elif kind == "choose_txt":
        raw = row["choices"]
        choices = [str(c).strip() for c in (raw if isinstance(raw, list) else raw.split(","))]
        if args.answer_is_index:
            position = int(answer) if answer.isdigit() and int(answer) < len(choices) else -1
        else:
            position = choices.index(answer) if answer in choices else -1
        if position < 0:
            raise ValueError(f"question {qid}: answer {answer!r} is not one of the choices {choices}"
                             + ("" if args.answer_is_index else " (if answers are indices, pass --answer-is-index)"))
        letter = chr(ord("A") + position)
        yield Item(id=qid, text=f"{row['question']}\n{option_letters(choices)}\n{LETTER}",
                   answers=[letter, choices[position]], targets=[letter], image=image,
                   extra={"ques_type": kind, "choices": choices})
    elif kind != "choose_img":
        raise ValueError(f"question {qid}: unknown ques_type {kind!r}")


SPEC = DatasetSpec(task="iconqa", benchmark="iconqa", default_dataset="lmms-lab/ICON-QA", default_split="test",
                   columns=("question_id", "question", "choices", "answer", "query_image", "ques_type"),
                   image_columns=("query_image",), convert=convert, add_arguments=add_arguments)

if __name__ == "__main__":
    main(SPEC, __doc__)
