"""Score an answers file against reference annotations.

    python -m eval.score --metric vqa_accuracy --result-file answers.jsonl --annotation-file ann.jsonl \
        [--question-file questions.jsonl] [--annotation-format jsonl|textvqa|scienceqa|gqa] [--limit N] \
        [--allow-missing] [--group-by task] [--output score.json]

The LAST line printed on stdout is one JSON object::

    {"metric": "vqa_accuracy", "score": 61.23, "n": 5000, "missing": 0,
     "per_task": {"textvqa": {"score": 61.23, "n": 5000}}, "result_file": ..., "annotation_file": ...}

`score` is the metric x100 as papers print it (accuracies and ANLS in 0-100; CIDEr x100, which can exceed
100). `n` counts the annotated questions. Predictions are matched to references by ``str(question_id)``,
never by order. Errors (exit status 1, message on stderr naming the file and the id): a question answered
twice, an answer to a question that has no annotation, and a question without an answer unless
`--allow-missing`, which scores it as wrong and reports how many in "missing".

With `--question-file` its ids must equal the annotation ids (`eval.formats.load_benchmark`), and when its rows
carry the `--group-by` field ("task" by default) the score is also broken down by that field under
"per_<field>" (rows without the field are grouped under "(none)"). A metric that reads the question rows (the
lettered ones read "choices"), an `--annotation-format` other than jsonl (LLaVA's eval files, joined to the
questions) and `--limit` (only the first N questions, as ``eval.run --limit``) all need the question file, so a
score never depends on whether it was given. ``eval.run`` scores through `score_files` too and records the exact
command that reproduces each of its scores ("rescore" in its scores.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from eval.formats import ANNOTATION_FORMATS, first_ids, load_annotations, load_benchmark
from eval.io import JsonlError, iter_jsonl, write_json
from eval.metrics import METRICS, SampleError, get_metric

NO_GROUP = "(none)"
__all__ = ["load_annotations", "load_predictions", "score", "score_files", "rescore_command", "main"]


def load_predictions(path: str | Path, known_ids: set[str], skipped: frozenset[str] = frozenset()) -> dict[str, str]:
    """{question_id: text} from an answers JSONL; rejects duplicates, non-string text and unknown ids.

    Answers to `skipped` questions (past a --limit) are left out.
    """
    preds: dict[str, str] = {}
    seen: set[str] = set()
    for number, row in iter_jsonl(path):
        if row.get("question_id") is None:
            raise JsonlError(f"{path}:{number}: missing 'question_id'")
        qid = str(row["question_id"])
        if qid in seen:
            raise JsonlError(f"{path}:{number}: question_id {qid!r} is answered twice")
        seen.add(qid)
        if qid in skipped:
            continue
        if qid not in known_ids:
            raise JsonlError(f"{path}:{number}: question_id {qid!r} has no annotation")
        if not isinstance(row.get("text"), str):
            raise JsonlError(f"{path}:{number}: question_id {qid!r}: 'text' must be a string")
        preds[qid] = row["text"]
    return preds


def score(metric: str, predictions: dict[str, str], annotations: dict[str, list[str]],
          questions: dict[str, dict[str, Any]] | None = None, allow_missing: bool = False,
          group_by: str = "task", result_file: str = "answers") -> dict[str, Any]:
    """The score summary for already-loaded data (see the module docstring for its keys).

    `result_file` only names the answers in error messages.
    """
    missing = set(annotations) - set(predictions)
    if missing and not allow_missing:
        raise ValueError(f"{result_file}: no answer for {len(missing)} of {len(annotations)} questions "
                         f"({first_ids(missing)}); pass --allow-missing to count them as wrong")
    unknown = set(predictions) - set(annotations)
    if unknown:
        raise ValueError(f"{result_file}: answers to questions without annotation: {first_ids(unknown)}")
    rule = get_metric(metric)
    full = {qid: predictions.get(qid) for qid in annotations}
    summary: dict[str, Any] = {"metric": metric, "score": 100.0 * rule.compute(full, annotations, questions),
                               "n": len(annotations), "missing": len(missing)}
    if questions and any(group_by in q for q in questions.values()):
        groups: dict[str, list[str]] = defaultdict(list)
        for qid in annotations:
            groups[str(questions.get(qid, {}).get(group_by, NO_GROUP))].append(qid)
        per_group = {}
        for name, ids in sorted(groups.items()):
            # One group is the whole set: reuse the score (a corpus metric would start Java again).
            value = summary["score"] if len(ids) == len(annotations) else 100.0 * rule.compute(
                {q: full[q] for q in ids}, {q: annotations[q] for q in ids}, questions)
            per_group[name] = {"score": value, "n": len(ids)}
        summary[f"per_{group_by}"] = per_group
    return summary


def score_files(metric: str, result_file: str | Path, annotation_file: str | Path,
                question_file: str | Path | None = None, allow_missing: bool = False,
                group_by: str = "task", annotation_format: str = "jsonl", limit: int | None = None) -> dict[str, Any]:
    """Load the files, check that their ids agree, and return the score summary (see the module docstring)."""
    rule = get_metric(metric)
    if question_file is None:
        needs = ("--metric " + metric if rule.needs_questions else
                 "--annotation-format " + annotation_format if annotation_format != "jsonl" else
                 "--limit" if limit else None)
        if needs:
            raise ValueError(f"{needs} reads the question rows: pass --question-file (eval.run scores with it)")
        questions, annotations, skipped = None, load_annotations(annotation_file), frozenset()
    else:
        joined = load_benchmark(question_file, annotation_file, annotation_format, limit)
        questions, annotations, skipped = joined.questions, joined.annotations, joined.skipped
    predictions = load_predictions(result_file, set(annotations), skipped)
    try:
        summary = score(metric, predictions, annotations, questions, allow_missing, group_by, str(result_file))
    except SampleError as e:  # a reference (or question row) the metric cannot use
        where = f"{annotation_file}" + (f" (questions: {question_file})" if question_file else "")
        raise ValueError(f"{where}: {e}") from None
    summary.update(result_file=str(result_file), annotation_file=str(annotation_file))
    return summary


def rescore_command(metric: str, result_file: str | Path, annotation_file: str | Path,
                    question_file: str | Path | None = None, allow_missing: bool = False, group_by: str = "task",
                    annotation_format: str = "jsonl", limit: int | None = None) -> list[str]:
    """The eval.score argument list that recomputes `score_files` with these arguments."""
    argv = ["--metric", metric, "--result-file", str(result_file), "--annotation-file", str(annotation_file)]
    if question_file is not None:
        argv += ["--question-file", str(question_file)]
    if annotation_format != "jsonl":
        argv += ["--annotation-format", annotation_format]
    if limit:
        argv += ["--limit", str(limit)]
    if allow_missing:
        argv.append("--allow-missing")
    return argv + ["--group-by", group_by]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """CLI entry point; prints the summary as the last stdout line and returns it."""
    parser = argparse.ArgumentParser(prog="python -m eval.score", description=__doc__.split("\n\n")[0])
    parser.add_argument("--metric", required=True, choices=list(METRICS))
    parser.add_argument("--result-file", required=True, help="answers JSONL written by generation")
    parser.add_argument("--annotation-file", required=True, help='JSONL of {"question_id", "answers"}')
    parser.add_argument("--question-file", help="question file (options of lettered metrics, per-task scores, "
                                                "LLaVA annotation formats, --limit)")
    parser.add_argument("--annotation-format", default="jsonl", choices=list(ANNOTATION_FORMATS),
                        help="jsonl, or one of LLaVA's eval files' annotations (eval.formats)")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N questions (eval.run --limit)")
    parser.add_argument("--allow-missing", action="store_true", help="score unanswered questions as wrong")
    parser.add_argument("--group-by", default="task", help="question field for the breakdown (default: task)")
    parser.add_argument("--output", help="also write the summary JSON to this file")
    args = parser.parse_args(argv)
    try:
        summary = score_files(args.metric, args.result_file, args.annotation_file, args.question_file,
                              args.allow_missing, args.group_by, args.annotation_format, args.limit)
    except (ValueError, RuntimeError) as e:
        sys.exit(f"error: {e}")
    if args.output:
        write_json(args.output, summary)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
