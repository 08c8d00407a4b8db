"""String-answer metrics: ANLS (DocVQA), relaxed accuracy (ChartQA) and normalized exact match."""

from __future__ import annotations

from typing import Sequence


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insert / delete / substitute, each cost 1) between two strings."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def anls(prediction: str, answers: Sequence[str], threshold: float = 0.5) -> float:
    """Average Normalized Levenshtein Similarity of one prediction, in [0, 1] (DocVQA / InfographicVQA).

    As the official Robust Reading Competition evaluator: both strings are stripped, lower-cased and have
    runs of whitespace collapsed before the edit distance; the distance is divided by the longer of the two
    *raw* strings (the evaluator measures ``len(s.upper())`` of the unprocessed text); the similarity is
    ``1 - distance / length`` maximised over references, and a maximum below `threshold` counts as 0.
    Two empty strings are identical (similarity 1).
    """
    if not answers:
        raise ValueError("no reference answers")
    pred = " ".join(prediction.strip().lower().split())
    best = 0.0
    for answer in answers:
        ref = " ".join(answer.strip().lower().split())
        length = max(len(answer.upper()), len(prediction.upper()))
        similarity = 1.0 if length == 0 else 1.0 - levenshtein(ref, pred) / length
        best = max(best, similarity)
    return 0.0 if best < threshold else best


def _to_float(text: str) -> float | None:
    """A number as the reference ChartQA implementation reads it: float(), with "x%" meaning x / 100."""
    try:
        if text.endswith("%"):
            return float(text.rstrip("%")) / 100.0
        return float(text)
    except ValueError:
        return None


def relaxed_correctness(prediction: str, target: str, max_relative_change: float = 0.05) -> bool:
    """ChartQA's rule (pix2struct / lmms-eval `relaxed_correctness`) for one reference.

    When both parse as numbers and the target is not 0, the prediction is correct within 5% relative error;
    otherwise (text answers, or a target of 0) it must equal the target case-insensitively. As in the
    reference, "%" divides by 100 on either side only ("45%" matches "0.45" but not "45"), and thousands
    separators are not understood ("1,000" is text).
    """
    pred_value, target_value = _to_float(prediction), _to_float(target)
    if pred_value is not None and target_value:
        return abs(pred_value - target_value) / abs(target_value) <= max_relative_change
    return prediction.lower() == target.lower()


def relaxed_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when `relaxed_correctness` holds for any reference (outer whitespace stripped), else 0.0."""
    if not answers:
        raise ValueError("no reference answers")
    pred = prediction.strip()
    return float(any(relaxed_correctness(pred, a.strip()) for a in answers))


def normalize_exact(text: str) -> str:
    """Lower-case, collapse all whitespace runs to one space, strip, then drop trailing periods and spaces.

    "  The Eiffel   Tower. " -> "the eiffel tower". Inner punctuation is kept ("u.s.a" stays distinct
    from "usa"): this is the GQA / OCR-VQA convention of LLaVA's scripts (``text.rstrip('.').lower()``),
    made robust to stray whitespace.
    """
    return " ".join(text.lower().split()).rstrip(". ")


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when the normalized prediction equals any normalized reference (`normalize_exact`), else 0.0."""
    if not answers:
        raise ValueError("no reference answers")
    pred = normalize_exact(prediction)
    return float(any(pred == normalize_exact(a) for a in answers))
