"""Assemble evaluation results into the paper's table: methods as rows, benchmarks as columns, plus Avg.

Input: one JSON file per evaluated model, as `eval.run` writes it::

    {"method": "thanora", "seed": 0, "model": "checkpoints/thanora-seed0",
     "scores": {"scienceqa_img": {"metric": "mc_accuracy", "score": 85.1, "n": 2017},
                "docvqa": {"metric": "anls", "score": 40.2, "n": 5349}}}

"method" names the table row and "seed" (number or string, may be absent) tells runs of one method apart;
the same (method, seed) twice is an error. Each score is eval.score's summary (other keys are ignored);
one benchmark must use the same metric in every file.

Cells: the mean over the method's runs that have the benchmark, and "± std" (sample standard deviation,
n - 1) when there are several. Avg: each run's mean over the table's columns, then mean ± std over runs;
it is left empty ("–") unless every run of the method has every column. The best mean of each column is
bold in Markdown and LaTeX.

    python -m eval.tables results/*.json [--benchmarks a,b,...] [--digits 2] [--output tables/main]

prints the Markdown table and, with --output PREFIX, writes PREFIX.md, PREFIX.csv and PREFIX.tex.
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from eval.io import read_json

DASH = "–"


@dataclass(frozen=True)
class Run:
    """The scores of one evaluated model."""

    method: str
    """Row name."""
    seed: Any
    """Distinguishes runs of one method (None when absent)."""
    scores: dict[str, float]
    """Benchmark name -> score (x100)."""
    metrics: dict[str, str]
    """Benchmark name -> metric name."""
    source: str
    """The file it came from, for error messages."""


@dataclass(frozen=True)
class Row:
    """One method's line of the table."""

    method: str
    """Row name."""
    n_runs: int
    """Number of runs (seeds) of the method."""
    cells: dict[str, tuple[float, float | None]]
    """Benchmark -> (mean, std or None); benchmarks without any score are absent."""
    avg: tuple[float, float | None] | None
    """Avg over the columns (mean, std), or None when some run lacks a column."""


def load_run(path: str | Path) -> Run:
    """Read and validate one result file."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("method"), str) or not data["method"]:
        raise ValueError(f"{path}: expected an object with a non-empty string 'method'")
    raw = data.get("scores")
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{path}: 'scores' must be a non-empty object of benchmark -> score summary")
    scores, metrics = {}, {}
    for bench, entry in raw.items():
        score = entry.get("score") if isinstance(entry, dict) else None
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise ValueError(f"{path}: scores[{bench!r}] must be an object with a numeric 'score'")
        scores[bench], metrics[bench] = float(score), str(entry.get("metric", ""))
    return Run(data["method"], data.get("seed"), scores, metrics, str(path))


def _mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def build_rows(runs: Sequence[Run], columns: Sequence[str]) -> list[Row]:
    """Group runs by method (first-appearance order) and aggregate them over `columns`."""
    seen: dict[tuple[str, str], str] = {}
    metric_of: dict[str, tuple[str, str]] = {}
    by_method: dict[str, list[Run]] = {}
    for run in runs:
        key = (run.method, repr(run.seed))
        if key in seen:
            raise ValueError(f"method {run.method!r} seed {run.seed!r} appears in both {seen[key]} and {run.source}")
        seen[key] = run.source
        for bench, metric in run.metrics.items():
            first = metric_of.setdefault(bench, (metric, run.source))
            if metric and first[0] and metric != first[0]:
                raise ValueError(f"benchmark {bench!r} is scored with {first[0]!r} in {first[1]} "
                                 f"but with {metric!r} in {run.source}")
        by_method.setdefault(run.method, []).append(run)
    rows = []
    for method, group in by_method.items():
        cells = {b: _mean_std([r.scores[b] for r in group if b in r.scores])
                 for b in columns if any(b in r.scores for r in group)}
        complete = bool(columns) and all(b in r.scores for r in group for b in columns)
        avg = _mean_std([statistics.fmean(r.scores[b] for b in columns) for r in group]) if complete else None
        rows.append(Row(method, len(group), cells, avg))
    return rows


def _format(cell: tuple[float, float | None] | None, digits: int, pm: str, dash: str) -> str:
    if cell is None:
        return dash
    mean, std = cell
    return f"{mean:.{digits}f}" + (f"{pm}{std:.{digits}f}" if std is not None else "")


def _best(rows: Sequence[Row], column: str | None, digits: int) -> float | None:
    """The best displayed mean of a column (None: Avg column)."""
    values = [round((r.cells.get(column) if column else r.avg)[0], digits) for r in rows
              if (r.cells.get(column) if column else r.avg) is not None]
    return max(values) if values else None


def _cells(rows: Sequence[Row], columns: Sequence[str], digits: int, pm: str, bold, dash: str) -> list[list[str]]:
    """Method, run count and formatted cells (Avg last) of every row."""
    best = {c: _best(rows, c, digits) for c in [*columns, None]}
    out = []
    for r in rows:
        line = []
        for c in [*columns, None]:
            cell = r.cells.get(c) if c else r.avg
            text = _format(cell, digits, pm, dash)
            line.append(bold(text) if cell is not None and round(cell[0], digits) == best[c] else text)
        out.append([r.method, str(r.n_runs), *line])
    return out


def combine_scores(files: Sequence[str], method: str = "individual") -> dict:
    """One `eval.run` result from per-model results that each scored different benchmarks (e.g. an individual
    run: each task's adapter on its own task). The same benchmark twice, or different seeds, is an error."""
    combined: dict[str, Any] = {"method": method, "seed": None, "model": [], "scores": {}}
    for i, path in enumerate(files):
        result = read_json(path)
        if i and result.get("seed") != combined["seed"]:
            raise ValueError(f"{path}: seed {result.get('seed')} differs from {files[0]}'s {combined['seed']}")
        combined["seed"] = result.get("seed")
        combined["model"].append(result.get("model"))
        for bench, score in result["scores"].items():
            if bench in combined["scores"]:
                raise ValueError(f"{path}: benchmark {bench} was already scored by another model")
            combined["scores"][bench] = score
    return combined


def to_markdown(rows: Sequence[Row], columns: Sequence[str], digits: int = 2) -> str:
    """GitHub Markdown table with a Seeds column; best mean per column in bold."""
    header = ["Method", "Seeds", *columns, "Avg"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * (len(columns) + 1)]
    for cells in _cells(rows, columns, digits, " ± ", lambda t: f"**{t}**", DASH):
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex(text: str) -> str:
    """Escape LaTeX special characters (one pass, so nothing is escaped twice)."""
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(rows: Sequence[Row], columns: Sequence[str], digits: int = 2) -> str:
    """A booktabs tabular; best mean per column in \\textbf."""
    body = [" & ".join([_tex(cells[0]), *cells[2:]]) + r" \\"
            for cells in _cells(rows, columns, digits, r" $\pm$ ", lambda t: rf"\textbf{{{t}}}", "--")]
    return "\n".join([
        r"\begin{tabular}{l" + "c" * len(columns) + "c}", r"\toprule",
        " & ".join(["Method", *map(_tex, columns), "Avg"]) + r" \\", r"\midrule", *body,
        r"\bottomrule", r"\end{tabular}",
    ]) + "\n"


def to_csv(rows: Sequence[Row], columns: Sequence[str]) -> str:
    """Full-precision CSV: method, seeds, then <column>, <column>_std for each column and for avg."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["method", "seeds", *[f"{c}{s}" for c in [*columns, "avg"] for s in ("", "_std")]])
    for r in rows:
        values = []
        for cell in [*(r.cells.get(c) for c in columns), r.avg]:
            mean, std = cell if cell else (None, None)
            values += ["" if mean is None else repr(mean), "" if std is None else repr(std)]
        writer.writerow([r.method, r.n_runs, *values])
    return buffer.getvalue()


def main(argv: Sequence[str] | None = None) -> str:
    """CLI entry point; prints and returns the Markdown table."""
    parser = argparse.ArgumentParser(prog="python -m eval.tables", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", help="result JSON files written by eval.run")
    parser.add_argument("--benchmarks", help="comma-separated columns in order (default: all, first seen)")
    parser.add_argument("--digits", type=int, default=2)
    parser.add_argument("--output", help="write PREFIX.md, PREFIX.csv and PREFIX.tex")
    args = parser.parse_args(argv)
    try:
        runs = [load_run(p) for p in args.results]
        columns = ([b.strip() for b in args.benchmarks.split(",") if b.strip()] if args.benchmarks
                   else list(dict.fromkeys(b for r in runs for b in r.scores)))
        rows = build_rows(runs, columns)
    except ValueError as e:
        sys.exit(f"error: {e}")
    markdown = to_markdown(rows, columns, args.digits)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        for suffix, text in ((".md", markdown), (".csv", to_csv(rows, columns)),
                             (".tex", to_latex(rows, columns, args.digits))):
            Path(args.output + suffix).write_text(text, encoding="utf-8")
    print(markdown, end="")
    return markdown


if __name__ == "__main__":
    main()
