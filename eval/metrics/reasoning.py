"""The text-only multi-task suites MoE-LoRA papers report (DoRA, MTL-LoRA, LLM-Adapters' evaluation):
the commonsense-reasoning eight in the commonsense-170k format, and GSM8K.

Commonsense (BoolQ, PIQA, SIQA, HellaSwag, WinoGrande, ARC-e, ARC-c, OBQA): every question's instruction ends with
its answer format ("Answer format: true/false", "... solution1/solution2", "... answer1/answer2/...",
"... ending1/.../ending4", "... option1/option2"), the target reads "the correct answer is answer3", and the
prediction is the FIRST of the question's labels that occurs in the answer (case-sensitive substring search, as
LLM-Adapters' `extract_answer` does with `re.findall`); no label is wrong.

GSM8K: the LAST number in the answer (thousands separators dropped) against the reference number, equal within
0.001 (LLM-Adapters' `evaluate.py` rule, which DoRA and MTL-LoRA reuse).
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

# task -> its labels, in the order the commonsense-170k instructions list them
COMMONSENSE_LABELS = {
    "boolq": ("true", "false"),
    "piqa": ("solution1", "solution2"),
    "siqa": ("answer1", "answer2", "answer3"),
    "hellaswag": ("ending1", "ending2", "ending3", "ending4"),
    "winogrande": ("option1", "option2"),
    "arc_e": ("answer1", "answer2", "answer3", "answer4", "answer5"),
    "arc_c": ("answer1", "answer2", "answer3", "answer4", "answer5"),
    "obqa": ("answer1", "answer2", "answer3", "answer4", "answer5"),
}
_NUMBER = re.compile(r"-?\d+\.?\d*")


def first_label(prediction: str, labels: Sequence[str]) -> str:
    """The label that occurs first in `prediction` ("" when none does)."""
    found = re.search("|".join(map(re.escape, labels)), prediction.strip()) if labels else None
    return found.group(0) if found else ""


def commonsense_accuracy(prediction: str, answers: Sequence[str], question: Mapping[str, Any]) -> float:
    labels = question.get("labels")
    if not labels:
        raise ValueError("commonsense_accuracy needs the question row's 'labels' (its answer format)")
    for answer in answers:
        if answer not in labels:
            raise ValueError(f"reference {answer!r} is not one of the question's labels {list(labels)}")
    return float(first_label(prediction, labels) in answers)


def last_number(text: str) -> float | None:
    """The last number written in `text`, thousands separators dropped; None when there is none."""
    numbers = _NUMBER.findall(text.replace(",", ""))
    return float(numbers[-1]) if numbers else None


def gsm8k_accuracy(prediction: str, answers: Sequence[str]) -> float:
    predicted = last_number(prediction)
    if predicted is None:
        return 0.0
    for answer in answers:
        reference = last_number(answer)
        if reference is None:
            raise ValueError(f"GSM8K reference {answer!r} holds no number")
        if abs(predicted - reference) <= 1e-3:
            return 1.0
    return 0.0
