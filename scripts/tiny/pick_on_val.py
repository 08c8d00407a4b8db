"""Print the one of several `eval.run` results with the best average over the named benchmarks (ties: the first).

    python scripts/tiny/pick_on_val.py RES_A/scores.json RES_B/scores.json ... --benchmarks a,b,c

compare.sh uses it to choose a merge weight on the validation split; it prints the winning file's path. A file
that lacks one of the benchmarks is an error, not a lower score.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from eval.tables import load_run


def average(path: str, benchmarks: list[str]) -> float:
    """The mean of the named benchmarks' scores in one eval.run result (read and checked by eval.tables)."""
    scores = load_run(path).scores
    missing = [b for b in benchmarks if b not in scores]
    if missing:
        raise SystemExit(f"{path}: no score for {missing}")
    return statistics.fmean(scores[b] for b in benchmarks)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+")
    ap.add_argument("--benchmarks", required=True, help="comma-separated benchmarks to average")
    args = ap.parse_args(argv)
    benchmarks = [b for b in args.benchmarks.split(",") if b]
    averages = [average(p, benchmarks) for p in args.results]
    best = max(range(len(averages)), key=lambda i: (averages[i], -i))
    for path, value in zip(args.results, averages):
        print(f"{value:8.3f}  {path}", file=sys.stderr)
    print(args.results[best])


if __name__ == "__main__":
    main()
