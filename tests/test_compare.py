"""eval.compare: per-question scores reproduce eval.score's numbers, and the paired bootstrap over seeds and
questions equals a plain re-implementation (same draws) and behaves as a confidence interval should."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eval import compare
from eval.compare import Run, paired_bootstrap
from eval.io import write_jsonl


def runs(method: str, table: dict) -> list[Run]:
    return [Run(method, seed, {"b": dict(scores)}) for seed, scores in table.items()]


def reference_bootstrap(m: list[Run], base: list[Run], n_boot: int, seed: int) -> tuple[float, float, float]:
    """The statistic written out loop by loop, with the draws in the documented order."""
    rng = np.random.default_rng(seed)
    seeds = sorted({r.seed for r in m} & {r.seed for r in base}, key=str)
    qids = sorted(m[0].questions["b"])
    seed_draws = rng.integers(0, len(seeds), size=(n_boot, len(seeds)))
    question_draws = rng.integers(0, len(qids), size=(n_boot, len(qids)))
    ms, bs = {r.seed: r for r in m}, {r.seed: r for r in base}
    reps = []
    for b in range(n_boot):
        per_seed = []
        for si in seed_draws[b]:
            s = seeds[si]
            qs = [qids[qi] for qi in question_draws[b]]
            per_seed.append(sum(ms[s].questions["b"][q] - bs[s].questions["b"][q] for q in qs) / len(qs))
        reps.append(sum(per_seed) / len(per_seed))
    delta = np.mean([[ms[s].questions["b"][q] - bs[s].questions["b"][q] for q in qids] for s in seeds])
    low, high = np.percentile(reps, [2.5, 97.5])
    return delta, low, high


def test_bootstrap_equals_the_loop_and_behaves():
    rng = np.random.default_rng(1)
    base = {s: {f"q{i}": float(rng.integers(0, 2) * 100) for i in range(40)} for s in (0, 1, 2)}
    better = {s: {q: 100.0 if i % 3 == 0 else v for i, (q, v) in enumerate(row.items())} for s, row in base.items()}
    m, b = runs("m", better), runs("base", base)
    got = paired_bootstrap(m, b, ["b"], 300, np.random.default_rng(7))
    delta, low, high = reference_bootstrap(m, b, 300, 7)
    assert got["b"]["delta"] == pytest.approx(delta) and got["b"]["low"] == pytest.approx(low)
    assert got["b"]["high"] == pytest.approx(high) and got["b"]["seeds"] == 3 and got["b"]["questions"] == 40
    assert 0 < low < delta < high  # never worse on any question, better on some: the interval excludes 0
    same = paired_bootstrap(b, runs("base", base), ["b"], 100, np.random.default_rng(0))["b"]
    assert same["delta"] == same["low"] == same["high"] == 0.0  # identical answers: no difference at all
    shifted = {s: {q: v + 5.0 for q, v in row.items()} for s, row in base.items()}
    constant = paired_bootstrap(runs("m", shifted), b, ["b"], 100, np.random.default_rng(0))["b"]
    assert constant["low"] == pytest.approx(5.0) and constant["high"] == pytest.approx(5.0)
    with pytest.raises(ValueError, match="share no seed"):
        paired_bootstrap(runs("m", {9: base[0]}), b, ["b"], 10, np.random.default_rng(0))


def test_scores_files_round_trip_through_the_cli(tmp_path):
    """Two methods, two seeds, an accuracy benchmark scored by eval.run's own scoring function: the recomputed
    scores equal the files' and the table marks a real difference."""
    from eval.score import rescore_command, score_files

    qids = [f"q{i}" for i in range(30)]
    write_jsonl(tmp_path / "q.jsonl", [{"question_id": q, "text": "?"} for q in qids])
    write_jsonl(tmp_path / "a.jsonl", [{"question_id": q, "answers": ["yes"]} for q in qids])
    files = []
    for method, right in (("lora", 12), ("thanora", 24)):
        for seed in (0, 1):
            answers = tmp_path / f"{method}{seed}.jsonl"
            write_jsonl(answers, [{"question_id": q, "text": "yes" if i < right + seed else "no"}
                                  for i, q in enumerate(qids)])
            args = dict(metric="exact_match", result_file=answers, annotation_file=tmp_path / "a.jsonl",
                        question_file=tmp_path / "q.jsonl")
            summary = {**score_files(**args), "rescore": rescore_command(**args)}  # what eval.run stores
            files.append(tmp_path / f"{method}{seed}.json")
            files[-1].write_text(json.dumps({"method": method, "seed": seed, "scores": {"tq": summary}}))
    result = compare.main([*map(str, files), "--baseline", "lora", "--n-boot", "500", "--output", str(tmp_path / "c")])
    thanora = result["methods"]["thanora"]
    assert thanora["cells"]["tq"]["mean"] == pytest.approx(100 * 24.5 / 30)
    assert thanora["vs_baseline"]["tq"]["delta"] == pytest.approx(40.0) and thanora["vs_baseline"]["tq"]["low"] > 0
    table = (tmp_path / "c.md").read_text()
    assert "Δ +40.00" in table and "]*" in table
    files[0].write_text(files[0].read_text().replace('"score": 40.0', '"score": 41.0'))
    with pytest.raises(SystemExit, match="per-question scores average"):
        compare.main([*map(str, files), "--baseline", "lora"])


def test_cider_per_image_scores_average_to_the_corpus_score():
    from eval.metrics import cider

    refs = {"a": ["a red circle on the left", "a red circle"], "b": ["two blue squares", "blue squares in a row"],
            "c": ["a green star", "one green star in the middle"]}
    preds = {"a": "a red circle", "b": "a blue square", "c": "a yellow star"}
    per_image = compare.per_question_scores("cider", preds, refs)
    assert np.mean(list(per_image.values())) == pytest.approx(100 * cider(refs, {k: [v] for k, v in preds.items()}))
    assert per_image["a"] > per_image["c"] > 0
