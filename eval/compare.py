"""Paired comparison of methods against a baseline, with bootstrap confidence intervals over seeds and questions.

    python -m eval.compare results/*/scores.json --baseline lora [--benchmarks a,b] [--n-boot 2000] [--seed 0]
        [--output PREFIX]

Input: the `scores.json` files `eval.run` writes, one per (method, seed); for each benchmark they store the
eval.score command that reproduces its score (answers, annotation and question files). Every question's score is
recomputed from those files (per-sample metrics: the metric of that answer; CIDEr: the
per-image CIDEr-D, with document frequencies from the whole test set, whose mean is coco-caption's corpus score).

For each method M and benchmark, over the seeds both M and the baseline B were run with (paired by seed: same
data order and initialization seed) and the questions both answered, the difference is

    delta = mean over seeds s of ( mean_q score_M(s, q) - mean_q score_B(s, q) )

and its 95% interval is the percentile bootstrap of that statistic when seeds and questions are resampled with
replacement, both methods always on the same resampled seeds and questions (so shared difficulty cancels). The
average column resamples each benchmark's questions independently within one replicate and averages the
benchmarks' deltas. A difference whose interval excludes 0 is marked with `*`.

Output: a Markdown table (mean ± std over seeds per benchmark, then delta [low, high] against the baseline) and,
with --output PREFIX, PREFIX.md and PREFIX.json (every number, full precision).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from eval.formats import load_annotations, load_benchmark
from eval.io import read_json, write_json
from eval.metrics import get_metric
from eval.score import load_predictions


@dataclass
class Run:
    """One evaluated model: its row name, seed, and per-benchmark per-question scores (x100)."""

    method: str
    seed: Any
    questions: dict[str, dict[str, float]]
    """benchmark -> {question_id: score}."""


def per_question_scores(metric_name: str, predictions: dict[str, str], references: dict[str, list[str]],
                        questions: dict[str, dict] | None = None) -> dict[str, float]:
    """{question_id: score x100}; a missing answer scores 0. Their mean is the benchmark's score."""
    metric = get_metric(metric_name)
    questions = questions or {}
    if metric.per_sample is not None:
        return {qid: 100.0 * metric.per_sample(predictions[qid], refs, questions.get(qid, {}))
                if predictions.get(qid) is not None else 0.0 for qid, refs in references.items()}
    if metric_name != "cider":
        raise ValueError(f"metric {metric_name!r} is corpus-level and has no per-question decomposition "
                         f"(CIDEr has: per-image scores); compare it with eval.tables instead")
    from pycocoevalcap.cider.cider import Cider

    from eval.metrics.caption import tokenize

    refs, preds = tokenize(references, {qid: [predictions.get(qid) or ""] for qid in references})
    ids = list(references)
    _, scores = Cider().compute_score({i: refs[q] for i, q in enumerate(ids)}, {i: preds[q] for i, q in enumerate(ids)})
    return {qid: 100.0 * float(s) for qid, s in zip(ids, scores)}


def _rescore_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """The files and settings of an eval.score command line (what eval.run stores as "rescore")."""
    parser = argparse.ArgumentParser(add_help=False)
    for flag in ("--metric", "--result-file", "--annotation-file", "--question-file", "--group-by"):
        parser.add_argument(flag)
    parser.add_argument("--annotation-format", default="jsonl")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--allow-missing", action="store_true")
    return parser.parse_args(list(argv))


def load_run(path: str | Path, benchmarks: Sequence[str] | None = None) -> Run:
    """A `scores.json` of eval.run with each benchmark's per-question scores recomputed from the files its
    stored eval.score command names (the same files, loaded the same way, as the score in the file)."""
    result = read_json(path)
    scores = {}
    for name, summary in result.get("scores", {}).items():
        if benchmarks is not None and name not in benchmarks:
            continue
        if "rescore" not in summary:
            raise ValueError(f"{path}: benchmark {name} has no stored eval.score command (not written by eval.run, "
                             f"or a server-scored split)")
        args = _rescore_arguments(summary["rescore"])
        if args.question_file is None:
            questions, references, skipped = None, load_annotations(args.annotation_file), frozenset()
        else:
            joined = load_benchmark(args.question_file, args.annotation_file, args.annotation_format, args.limit)
            questions, references, skipped = joined.questions, joined.annotations, joined.skipped
        predictions = load_predictions(args.result_file, set(references), skipped)
        scores[name] = per_question_scores(args.metric, predictions, references, questions)
        recomputed = float(np.mean(list(scores[name].values())))
        if abs(recomputed - summary["score"]) > 1e-6 * max(1.0, abs(summary["score"])):
            raise ValueError(f"{path}: {name}: per-question scores average {recomputed:.6f}, but the file says "
                             f"{summary['score']:.6f} (were the answers or annotations changed since?)")
    return Run(str(result.get("method") or Path(path).parent.name), result.get("seed"), scores)


def _matrix(runs: list[Run], bench: str, seeds: list, qids: list[str]) -> np.ndarray:
    by_seed = {r.seed: r for r in runs}
    return np.array([[by_seed[s].questions[bench][q] for q in qids] for s in seeds])


def paired_bootstrap(method_runs: list[Run], base_runs: list[Run], benches: Sequence[str], n_boot: int,
                     rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """{benchmark or "avg": {"delta", "low", "high", "seeds", "questions"}} of method minus baseline."""
    seeds = sorted({r.seed for r in method_runs} & {r.seed for r in base_runs}, key=str)
    if not seeds:
        raise ValueError(f"{method_runs[0].method} and {base_runs[0].method} share no seed: nothing to pair")
    seed_draws = rng.integers(0, len(seeds), size=(n_boot, len(seeds)))
    out, replicate_deltas = {}, []
    for bench in benches:
        runs = [r for r in method_runs + base_runs if r.seed in seeds]
        if any(bench not in r.questions for r in runs):
            continue
        qids = sorted(set.intersection(*(set(r.questions[bench]) for r in runs)))
        diff = _matrix(method_runs, bench, seeds, qids) - _matrix(base_runs, bench, seeds, qids)  # (S, Q)
        question_draws = rng.integers(0, len(qids), size=(n_boot, len(qids)))
        # replicate b: mean over the drawn seeds of the mean over the drawn questions
        per_seed = diff[:, question_draws].mean(axis=2)  # (S, B)
        reps = np.take_along_axis(per_seed.T, seed_draws, axis=1).mean(axis=1)  # (B,)
        replicate_deltas.append(reps)
        low, high = np.percentile(reps, [2.5, 97.5])
        out[bench] = {"delta": float(diff.mean()), "low": float(low), "high": float(high), "seeds": len(seeds),
                      "questions": len(qids)}
    if out and len(out) == len(benches):
        reps = np.mean(replicate_deltas, axis=0)
        low, high = np.percentile(reps, [2.5, 97.5])
        out["avg"] = {"delta": float(np.mean([out[b]["delta"] for b in benches])), "low": float(low),
                      "high": float(high), "seeds": len(seeds), "questions": sum(out[b]["questions"] for b in benches)}
    return out


def compare(runs: list[Run], baseline: str, benches: Sequence[str], n_boot: int = 2000, seed: int = 0) -> dict:
    """Per method: mean ± std over seeds per benchmark (and avg), and the paired bootstrap against `baseline`."""
    by_method: dict[str, list[Run]] = {}
    for run in runs:
        if any(r.seed == run.seed for r in by_method.get(run.method, [])):
            raise ValueError(f"method {run.method!r} has seed {run.seed!r} twice")
        by_method.setdefault(run.method, []).append(run)
    if baseline not in by_method:
        raise ValueError(f"no run of the baseline {baseline!r}; methods: {sorted(by_method)}")
    rng = np.random.default_rng(seed)
    table = {}
    for method, mruns in by_method.items():
        cells = {}
        for bench in [*benches, "avg"]:
            values = [float(np.mean(list(r.questions[bench].values()))) if bench != "avg" else
                      float(np.mean([np.mean(list(r.questions[b].values())) for b in benches]))
                      for r in mruns if bench == "avg" and all(b in r.questions for b in benches)
                      or bench in r.questions]
            if values:
                cells[bench] = {"mean": statistics.fmean(values),
                                "std": statistics.stdev(values) if len(values) > 1 else 0.0, "runs": len(values)}
        entry = {"cells": cells, "seeds": sorted((r.seed for r in mruns), key=str)}
        if method != baseline:
            entry["vs_baseline"] = paired_bootstrap(mruns, by_method[baseline], benches, n_boot, rng)
        table[method] = entry
    return {"baseline": baseline, "benchmarks": list(benches), "n_boot": n_boot, "seed": seed, "methods": table}


def to_markdown(result: dict, digits: int = 2) -> str:
    benches, baseline = result["benchmarks"], result["baseline"]
    f = f"{{:.{digits}f}}"
    header = ["Method", "Seeds", *benches, "Avg"]
    lines = ["| " + " | ".join(header) + " |", "|---|---:|" + "---:|" * (len(benches) + 1)]
    for method, entry in result["methods"].items():
        cells = []
        for bench in [*benches, "avg"]:
            cell = entry["cells"].get(bench)
            text = "–" if cell is None else f.format(cell["mean"]) + (" ± " + f.format(cell["std"])
                                                                       if cell["runs"] > 1 else "")
            paired = entry.get("vs_baseline", {}).get(bench)
            if paired:
                mark = "*" if paired["low"] > 0 or paired["high"] < 0 else ""
                text += (f"<br>Δ {paired['delta']:+.{digits}f} [{paired['low']:+.{digits}f}, "
                         f"{paired['high']:+.{digits}f}]{mark}")
            cells.append(text)
        lines.append(f"| {method} | {len(entry['seeds'])} | " + " | ".join(cells) + " |")
    note = (f"\nΔ: paired difference to {baseline} with its 95% bootstrap interval over seeds and questions "
            f"({result['n_boot']} replicates); * = the interval excludes 0.\n")
    return "\n".join(lines) + "\n" + note


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m eval.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", help="scores.json files written by eval.run")
    parser.add_argument("--baseline", required=True, help="the method every other is compared with (e.g. lora)")
    parser.add_argument("--benchmarks", help="comma-separated columns (default: all benchmarks of the first file)")
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap draws")
    parser.add_argument("--digits", type=int, default=2)
    parser.add_argument("--output", help="write PREFIX.md and PREFIX.json")
    args = parser.parse_args(argv)
    try:
        names = ([b.strip() for b in args.benchmarks.split(",") if b.strip()] if args.benchmarks
                 else list(read_json(args.results[0])["scores"]))
        runs = [load_run(p, names) for p in args.results]
        result = compare(runs, args.baseline, names, args.n_boot, args.seed)
    except (ValueError, KeyError) as e:
        sys.exit(f"error: {e}")
    markdown = to_markdown(result, args.digits)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output + ".md").write_text(markdown, encoding="utf-8")
        write_json(args.output + ".json", result)
    print(markdown, end="")
    return result


if __name__ == "__main__":
    main()
