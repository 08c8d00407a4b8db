"""Join the answer shards of `eval.generate --num-chunks C --chunk-idx I` into one file, in question-file order.

    python -m eval.merge_answers --question-file Q --answers-files A.0 A.1 ... --output A [--allow-missing]

The shards must come from one run: every answer line carries the same "run" fingerprint (`eval.answers`), and
the output gets that run's record. Shards of different runs (another model, format or budget) are refused.
"""

from __future__ import annotations

import argparse

from .answers import read_record, write_record
from .formats import read_questions
from .io import read_by_id, write_jsonl


def merge(question_file: str, shards: list[str], output: str, allow_missing: bool = False) -> int:
    answers: dict[str, dict] = {}
    runs: dict[object, str] = {}
    for shard in shards:
        for row in read_by_id(shard).values():
            runs.setdefault(row.get("run"), shard)
    if len(runs) > 1:
        raise ValueError("the shards come from different runs: " + ", ".join(
            f"{shard} has run {run}" for run, shard in runs.items()) + "; re-run the odd shards with --overwrite")
    records = [r for r in map(read_record, shards) if r is not None]
    for shard in shards:
        for qid, row in read_by_id(shard).items():  # read_by_id already refuses duplicates within a shard
            if qid in answers:
                raise ValueError(f"{shard}: question_id {qid!r} is also in another shard")
            answers[qid] = row
    order = [str(q["question_id"]) for q in read_questions(question_file)]
    missing = [qid for qid in order if qid not in answers]
    if missing and not allow_missing:
        raise ValueError(f"{len(missing)} questions have no answer in the shards (first: {missing[0]!r}); "
                         "re-run the unfinished chunks (generation resumes) or pass --allow-missing")
    unknown = set(answers) - set(order)
    if unknown:
        raise ValueError(f"answers for ids not in {question_file}: {sorted(unknown)[:5]}")
    count = write_jsonl(output, (answers[qid] for qid in order if qid in answers))
    if records:
        write_record(output, records[0]["record"], {"merged_from": list(shards)})
    return count


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--question-file", required=True)
    ap.add_argument("--answers-files", nargs="+", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--allow-missing", action="store_true")
    args = ap.parse_args(argv)
    n = merge(args.question_file, args.answers_files, args.output, args.allow_missing)
    print(f"merged {n} answers -> {args.output}")


if __name__ == "__main__":
    main()
