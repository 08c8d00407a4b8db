"""Multiple-choice accuracy: which option letter a free-text answer names, under three named rules.

``llava`` (the default of every lettered benchmark) is LLaVA-1.5's ``eval_science_qa.py``, exactly: the answer
(stripped, as LLaVA's generator strips it) is read as

  1. the whole answer is one capital letter: "B";
  2. else it starts with a capital letter, a period and a space: "B. photosynthesis";
  3. else it contains "The answer is X" followed by any one character exactly once: "The answer is B.";

and anything else, or a letter past the last option, is wrong. LLaVA's option list is A-E (ScienceQA has at
most five choices); here it is A-Z, so questions with more than five options are read the same way instead of
always failing. Everything else ("b", "(B)", "B)", "Answer: B", "The answer is B" at the very end, the option's
own text) scores 0, as in LLaVA.

``lmms_eval`` is lmms-eval's ScienceQA rule (``sqa_process_results``): right when the stripped answer equals the
reference letter ignoring case ("b" counts), or starts with a capital letter followed by "." that is the
reference letter ("B.", "B.photo"). It needs no options.

``lenient`` is this project's own extractor, an opt-in for inspecting models that drift in format: LLaVA's
three rules first, then

  4. the whole answer is a letter, optionally bracketed or followed by "." or ":": "b", "(B)", "B:";
  5. a leading option marker followed by text: "(B) photosynthesis", "b) cell", "B: x";
  6. an answer phrase: "Answer: (c)", "the correct answer is option B because ...". A capital letter may be
     followed by more words; a lower-case one must be bracketed or end the sentence, so "the answer is a
     cat" is not read as option A. All answer phrases in the text must name the same letter;
  7. the answer equals one option's text ("Photosynthesis."), or contains exactly one option's text as whole
     words.

Its numbers are higher than LLaVA's or lmms-eval's for the same answers and are not comparable with them.
"""

from __future__ import annotations

import re
import string
from typing import Any, Sequence

LETTERS = string.ascii_uppercase
CHOICE_RULES = ("llava", "lmms_eval", "lenient")

# LLaVA's three rules (llava/eval/eval_science_qa.py), with any capital letter instead of A-E. The "." of the
# phrase pattern is a regex wildcard there too, so "The answer is B" needs one more character after the letter.
_LLAVA_PREFIX = re.compile(r"([A-Z])\. ")
_LLAVA_PHRASE = re.compile(r"The answer is ([A-Z]).")
# The lenient extensions.
_BARE_LETTER = re.compile(r"[(\[]?([A-Za-z])[)\]]?[.:]?")
_LEADING_MARKER = re.compile(r"(?:\(([A-Za-z])\)|([A-Za-z])[.):])\s")
_ANSWER_PHRASE = re.compile(
    r"(?i:\banswer\b(?:\s+is)?\s*:?(?:\s*(?:option|choice)\b)?)\s*"
    r"(?:[(\[]([A-Za-z])[)\]]"            # bracketed letter, any case
    r"|([A-Z])(?![A-Za-z0-9'])"            # capital letter ending a word
    r"|([a-z])(?=\s*(?:[.,;!?]|$)))"       # lower-case letter only before punctuation or the end
)


def _normalize(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(". ")


def _letter_from_choice_text(prediction: str, choices: Sequence[Any]) -> str | None:
    """Option letter whose text the prediction equals, or else the only one it contains as whole words."""
    pred = _normalize(prediction)
    texts = [_normalize(str(c)) for c in choices]
    equal = [i for i, t in enumerate(texts) if t and t == pred]
    if len(equal) == 1:
        return LETTERS[equal[0]]
    contained = [i for i, t in enumerate(texts)
                 if t and re.search(r"(?<!\w)" + re.escape(t) + r"(?!\w)", pred)]
    return LETTERS[contained[0]] if len(contained) == 1 else None


def _answer_phrase_letter(text: str) -> str | None:
    """The letter named by answer phrases, when there is at least one and they all agree."""
    letters = {next(g for g in m.groups() if g).upper() for m in _ANSWER_PHRASE.finditer(text)}
    return letters.pop() if len(letters) == 1 else None


def _llava_letter(text: str) -> str | None:
    """LLaVA's reading: the bare capital, else a "X. " prefix, else exactly one "The answer is X."."""
    if len(text) == 1 and text in LETTERS:
        return text
    if _LLAVA_PREFIX.match(text):
        return text[0]
    found = _LLAVA_PHRASE.findall(text)
    return found[0] if len(found) == 1 else None


def _lenient_letter(text: str, choices: Sequence[Any] | None) -> str | None:
    letter = _llava_letter(text)
    for rule in (_BARE_LETTER.fullmatch, _LEADING_MARKER.match):
        if letter is None and (match := rule(text)):
            letter = next(g for g in match.groups() if g).upper()
    if letter is None:
        letter = _answer_phrase_letter(text)
    if letter is None and choices:
        letter = _letter_from_choice_text(text, choices)
    return letter


def extract_choice(prediction: str, choices: Sequence[Any] | None = None, rule: str = "llava") -> str | None:
    """The option letter a free-text answer names under `rule` ("llava" or "lenient"), or None.

    With `choices`, a letter past the last option is rejected (None); without them any letter A-Z is accepted.
    lmms-eval's rule compares with the reference instead of reading a letter, so it has no extractor here.
    """
    if rule not in ("llava", "lenient"):
        raise ValueError(f"no letter extractor for rule {rule!r}; known: llava, lenient")
    valid = LETTERS[:len(choices)] if choices else LETTERS
    text = prediction.strip()
    letter = _llava_letter(text) if rule == "llava" else _lenient_letter(text, choices)
    return letter if letter is not None and letter in valid else None


def _lmms_eval_correct(prediction: str, answer: str) -> bool:
    pred = prediction.strip()
    if pred.lower() == answer.lower():
        return True
    return len(pred) >= 2 and pred[0].isupper() and pred[1] == "." and pred[0].lower() == answer.lower()


def mc_accuracy(prediction: str, answer_letter: str, choices: Sequence[Any] | None = None,
                rule: str = "llava") -> float:
    """1.0 when `prediction` names `answer_letter` under `rule` (see the module docstring), else 0.0."""
    if rule not in CHOICE_RULES:
        raise ValueError(f"unknown choice rule {rule!r}; known: {', '.join(CHOICE_RULES)}")
    answer = answer_letter.strip().upper()
    if len(answer) != 1 or answer not in LETTERS:
        raise ValueError(f"reference {answer_letter!r} is not an option letter A-Z")
    if choices is not None and answer not in LETTERS[:len(choices)]:
        raise ValueError(f"reference {answer_letter!r} is past the last of {len(choices)} choices")
    if rule == "lmms_eval":
        return float(_lmms_eval_correct(prediction, answer))
    return float(extract_choice(prediction, choices, rule) == answer)
