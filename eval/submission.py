"""Upload files for splits that only an evaluation server scores, written as LLaVA-1.5's scripts write them.

    python -m eval.submission vqav2 --answers-file A.jsonl --question-file llava_vqav2_mscoco_test-dev2015.jsonl \\
        --server-question-file llava_vqav2_mscoco_test2015.jsonl --output answers_upload/test-dev.json

vqav2
    LLaVA's ``convert_vqav2_for_submission.py``: a JSON list ``[{"question_id": int, "answer": str}]`` with one
    entry for every question of the server's list (EvalAI's test-dev phase takes the whole test2015 list; the
    questions outside test-dev get ""), each answer passed through the EvalAI answer processor
    (`normalize_vqa_answer`), in the server list's order.
gqa
    LLaVA's ``convert_gqa_for_eval.py``: ``[{"questionId", "prediction"}]`` with the answer's trailing periods
    stripped and lower-cased, the input of GQA's own ``eval.py`` and of its test server.

Unlike LLaVA's converters, a question of `--question-file` (the questions that were asked) without an answer
is an error unless `--allow-missing` (LLaVA writes "" for it without a word), and so is an answer to a question
the server does not list.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .formats import first_ids, read_questions
from .io import iter_jsonl, write_json
from .metrics.vqa import normalize_vqa_answer


def _vqav2(qid: Any, text: str | None) -> dict:
    return {"question_id": qid, "answer": "" if text is None else normalize_vqa_answer(text)}


def _gqa(qid: Any, text: str | None) -> dict:
    return {"questionId": qid, "prediction": "" if text is None else text.rstrip(".").lower()}


SUBMISSIONS: Mapping[str, Callable[[Any, str | None], dict]] = {"vqav2": _vqav2, "gqa": _gqa}


def write_submission(fmt: str, answers_file: str | Path, question_file: str | Path, output: str | Path,
                     server_question_file: str | Path | None = None, allow_missing: bool = False) -> int:
    """Write the upload file; returns how many of its entries hold an answer."""
    if fmt not in SUBMISSIONS:
        raise ValueError(f"unknown submission format {fmt!r}; known: {', '.join(SUBMISSIONS)}")
    answers: dict[str, str] = {}
    for number, row in iter_jsonl(answers_file):
        qid = str(row.get("question_id"))
        if qid in answers:
            raise ValueError(f"{answers_file}:{number}: question_id {qid!r} is answered twice")
        answers[qid] = row.get("text", "")
    asked = {str(q["question_id"]) for q in read_questions(question_file)}
    server = read_questions(server_question_file or question_file)
    listed = {str(q["question_id"]) for q in server}
    missing, unknown = asked - set(answers), set(answers) - listed
    if asked - listed:
        raise ValueError(f"{question_file}: questions the server does not list in {server_question_file}: "
                         f"{first_ids(asked - listed)}")
    if unknown:
        raise ValueError(f"{answers_file}: answers to questions the server does not list: {first_ids(unknown)}")
    if missing and not allow_missing:
        raise ValueError(f"{answers_file}: no answer for {len(missing)} of the {len(asked)} questions of "
                         f"{question_file} ({first_ids(missing)}); finish generating, or pass --allow-missing")
    rows = [SUBMISSIONS[fmt](q["question_id"], answers.get(str(q["question_id"]))) for q in server]
    write_json(output, rows)
    return sum(str(q["question_id"]) in answers for q in server)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.submission", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("format", choices=list(SUBMISSIONS))
    ap.add_argument("--answers-file", required=True)
    ap.add_argument("--question-file", required=True, help="the questions that were asked")
    ap.add_argument("--server-question-file", default=None, help="every question the server expects (default: "
                                                                 "--question-file)")
    ap.add_argument("--output", required=True)
    ap.add_argument("--allow-missing", action="store_true")
    args = ap.parse_args(argv)
    try:
        n = write_submission(args.format, args.answers_file, args.question_file, args.output,
                             args.server_question_file, args.allow_missing)
    except ValueError as e:
        sys.exit(f"error: {e}")
    print(f"{n} answers -> {args.output}")
    return n


if __name__ == "__main__":
    main()
