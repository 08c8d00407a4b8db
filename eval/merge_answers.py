"""Join the answer shards of `eval.generate --num-chunks C --chunk-idx I` into one file, in question-file order.

    python -m eval.merge_answers --question-file Q --answers-files A.0 A.1 ... --output A [--allow-missing]
"""

from __future__ import annotations

import argparse

from .io import read_by_id, read_jsonl, write_jsonl


def merge(question_file: str, shards: list[str], output: str, allow_missing: bool = False) -> int:
    answers: dict[str, dict] = {}
    for shard in shards:
        for qid, row in read_by_id(shard).items():  # read_by_id already refuses duplicates within a shard
            if qid in answers:
                raise ValueError(f"{shard}: question_id {qid!r} is also in another shard")
            answers[qid] = row
    order = [str(q["question_id"]) for q in read_jsonl(question_file)]
    missing = [qid for qid in order if qid not in answers]
    if missing and not allow_missing:
        raise ValueError(f"{len(missing)} questions have no answer in the shards (first: {missing[0]!r}); "
                         "re-run the unfinished chunks (generation resumes) or pass --allow-missing")
    unknown = set(answers) - set(order)
    if unknown:
        raise ValueError(f"answers for ids not in {question_file}: {sorted(unknown)[:5]}")
    return write_jsonl(output, (answers[qid] for qid in order if qid in answers))


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
