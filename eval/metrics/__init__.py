"""Answer metrics and the read-only table of them that `eval.score` and the benchmark registry use by name.

Per-sample metrics score one prediction in [0, 1] and a benchmark's score is their mean; corpus metrics
(CIDEr, BLEU) score a whole set at once. `Metric.compute` hides the difference and returns the fraction
(CIDEr: coco-caption's number); eval.score multiplies by 100 as papers print it.

| name             | function           | used for                            |
|------------------|--------------------|-------------------------------------|
| vqa_accuracy     | `vqa_accuracy`     | TextVQA (and any VQA-style task)     |
| vqav2_accuracy   | `vqav2_accuracy`   | VQA v2 (LLaVA's upload, official server) |
| vqav2_accuracy_lmms_eval | `vqav2_accuracy_lmms_eval` | VQA v2 as lmms-eval scores it |
| anls             | `anls`             | DocVQA, OCR-style answers           |
| relaxed_accuracy | `relaxed_accuracy` | ChartQA                             |
| mc_accuracy      | `mc_accuracy` (rule "llava") | ScienceQA and every lettered task: LLaVA's official rules |
| mc_accuracy_lmms_eval | rule "lmms_eval" | lmms-eval's ScienceQA rule        |
| mc_accuracy_lenient | rule "lenient"  | opt-in lenient extraction (not comparable) |
| exact_match      | `exact_match`      | GQA, OCR-VQA, IconQA                |
| cider / bleu4    | `cider`, `bleu4`   | captioning (COCO, Flickr30k)        |
| commonsense_accuracy | `commonsense_accuracy` | the commonsense eight (first label of the answer format) |
| gsm8k_accuracy   | `gsm8k_accuracy`   | GSM8K (the last number of the answer)  |

A metric whose `needs_questions` is set reads each question's row (the lettered ones need its "choices": LLaVA's
rule rejects a letter past the last option), so eval.score refuses to run it without the question file instead
of scoring differently from eval.run.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

from eval.metrics.caption import bleu4, cider
from eval.metrics.choice import CHOICE_RULES, extract_choice, mc_accuracy
from eval.metrics.reasoning import commonsense_accuracy, gsm8k_accuracy
from eval.metrics.text import anls, exact_match, levenshtein, normalize_exact, relaxed_accuracy
from eval.metrics.vqa import normalize_vqa_answer, vqa_accuracy, vqav2_accuracy, vqav2_accuracy_lmms_eval

SampleFn = Callable[[str, Sequence[str], Mapping[str, Any]], float]
CorpusFn = Callable[[Mapping[str, Sequence[str]], Mapping[str, Sequence[str]]], float]


class SampleError(ValueError):
    """A metric could not score one question (e.g. a reference that is not an option letter)."""

    def __init__(self, question_id: str, reason: str):
        super().__init__(f"question_id {question_id!r}: {reason}")
        self.question_id = question_id


@dataclass(frozen=True)
class Metric:
    """A scoring rule as eval.score applies it to a benchmark."""

    name: str
    """Registry key, used by `--metric` and by benchmark entries."""
    per_sample: SampleFn | None = None
    """(prediction, reference answers, question row) -> score in [0, 1]; None for a corpus metric."""
    corpus: CorpusFn | None = None
    """({id: references}, {id: [prediction]}) -> corpus score; None for a per-sample metric."""
    needs_questions: bool = False
    """Whether scoring reads the question rows (e.g. their "choices"); eval.score then requires --question-file."""

    def compute(self, predictions: Mapping[str, str | None], references: Mapping[str, Sequence[str]],
                questions: Mapping[str, Mapping[str, Any]] | None = None) -> float:
        """Score `predictions` against `references` (same ids). A None prediction (missing) counts as wrong.

        Per-sample metrics give the missing sample 0; corpus metrics see an empty caption. A ValueError from
        a metric is re-raised as SampleError naming the question id.
        """
        if set(predictions) != set(references):
            raise ValueError("predictions and references must have the same ids")
        if not references:
            raise ValueError("nothing to score")
        if self.corpus is not None:
            return self.corpus(references, {k: [p or ""] for k, p in predictions.items()})
        questions = questions or {}
        total = 0.0
        for qid, prediction in predictions.items():
            if prediction is None:
                continue
            try:
                total += self.per_sample(prediction, references[qid], questions.get(qid, {}))
            except ValueError as e:
                raise SampleError(qid, str(e)) from None
        return total / len(references)


def _mc(rule: str) -> SampleFn:
    def score(prediction: str, answers: Sequence[str], question: Mapping[str, Any]) -> float:
        choices = question.get("choices")
        if rule == "llava" and not choices:
            # LLaVA's rule counts a letter past the last option as wrong, so it cannot score without them.
            raise ValueError("the question row has no 'choices' (LLaVA's rule needs the number of options)")
        return max(mc_accuracy(prediction, a, choices, rule) for a in answers)
    return score


METRICS: Mapping[str, Metric] = MappingProxyType({
    "vqa_accuracy": Metric("vqa_accuracy", per_sample=lambda p, a, q: vqa_accuracy(p, a)),
    "vqav2_accuracy": Metric("vqav2_accuracy", per_sample=lambda p, a, q: vqav2_accuracy(p, a)),
    "vqav2_accuracy_lmms_eval": Metric("vqav2_accuracy_lmms_eval",
                                       per_sample=lambda p, a, q: vqav2_accuracy_lmms_eval(p, a)),
    "anls": Metric("anls", per_sample=lambda p, a, q: anls(p, a)),
    "relaxed_accuracy": Metric("relaxed_accuracy", per_sample=lambda p, a, q: relaxed_accuracy(p, a)),
    "mc_accuracy": Metric("mc_accuracy", per_sample=_mc("llava"), needs_questions=True),
    "mc_accuracy_lmms_eval": Metric("mc_accuracy_lmms_eval", per_sample=_mc("lmms_eval")),
    "mc_accuracy_lenient": Metric("mc_accuracy_lenient", per_sample=_mc("lenient"), needs_questions=True),
    "exact_match": Metric("exact_match", per_sample=lambda p, a, q: exact_match(p, a)),
    "commonsense_accuracy": Metric("commonsense_accuracy", per_sample=commonsense_accuracy, needs_questions=True),
    "gsm8k_accuracy": Metric("gsm8k_accuracy", per_sample=lambda p, a, q: gsm8k_accuracy(p, a)),
    "cider": Metric("cider", corpus=cider),
    "bleu4": Metric("bleu4", corpus=bleu4),
})


def get_metric(name: str) -> Metric:
    """The metric called `name`; ValueError listing the known names otherwise."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    return METRICS[name]


__all__ = [
    "CHOICE_RULES", "METRICS", "Metric", "SampleError", "get_metric", "anls", "bleu4", "cider", "exact_match", "extract_choice",
    "levenshtein", "mc_accuracy", "normalize_exact", "normalize_vqa_answer", "relaxed_accuracy", "vqa_accuracy",
    "vqav2_accuracy", "vqav2_accuracy_lmms_eval",
]
