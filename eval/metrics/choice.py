"""Multiple-choice accuracy: read the option letter a model chose from free text (ScienceQA style).

LLaVA's ScienceQA script reads exactly "B", a "B. ..." prefix, or a single "The answer is B." and counts
anything else (or a letter past the last option) as wrong. `extract_choice` tries those three rules first, in
LLaVA's order (with any capital letter in place of LLaVA's A-E), so it reads the same letter wherever LLaVA
reads one, then falls back to these forms; whatever stays ambiguous is unparseable and therefore wrong.

  1. the whole answer is a letter, optionally bracketed or followed by "." or ":": "b", "(B)", "B:"
  2. a leading option marker followed by text: "(B) photosynthesis", "b) cell", "B: x"
  3. an answer phrase: "Answer: (c)", "the correct answer is option B because ...". A capital letter may be
     followed by more words; a lower-case one must be bracketed or end the sentence, so "the answer is a
     cat" is not read as option A. All answer phrases in the text must name the same letter.
  4. with `choices` given: the answer equals one choice's text ("Photosynthesis."), or contains exactly one
     choice's text as whole words.
"""

from __future__ import annotations

import re
import string
from typing import Any, Sequence

LETTERS = string.ascii_uppercase

# LLaVA's three rules (llava/eval/eval_science_qa.py), with any capital letter instead of A-E.
_LLAVA_PREFIX = re.compile(r"([A-Z])\. ")
_LLAVA_PHRASE = re.compile(r"The answer is ([A-Z]).")
# Our extensions.
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


def extract_choice(prediction: str, choices: Sequence[Any] | None = None) -> str | None:
    """The upper-case option letter a free-text answer names, or None when it names none unambiguously.

    With `choices`, a letter past the last option is rejected (None) and rule 4 of the module docstring
    applies; without them any letter A-Z is accepted.
    """
    valid = LETTERS[:len(choices)] if choices else LETTERS
    text = prediction.strip()
    letter = _llava_letter(text)
    for rule in (_BARE_LETTER.fullmatch, _LEADING_MARKER.match):
        if letter is None and (match := rule(text)):
            letter = next(g for g in match.groups() if g).upper()
    if letter is None:
        letter = _answer_phrase_letter(text)
    if letter is None and choices:
        letter = _letter_from_choice_text(text, choices)
    return letter if letter is not None and letter in valid else None


def mc_accuracy(prediction: str, answer_letter: str, choices: Sequence[Any] | None = None) -> float:
    """1.0 when the option letter read from `prediction` (`extract_choice`) is `answer_letter`, else 0.0."""
    answer = answer_letter.strip().upper()
    if len(answer) != 1 or answer not in LETTERS:
        raise ValueError(f"reference {answer_letter!r} is not an option letter A-Z")
    if choices is not None and answer not in LETTERS[:len(choices)]:
        raise ValueError(f"reference {answer_letter!r} is past the last of {len(choices)} choices")
    return float(extract_choice(prediction, choices) == answer)
