"""VQA soft accuracy: TextVQA's evaluator (`vqa_accuracy`) and the official VQA v2 script (`vqav2_accuracy`).

Both follow the definitions published with the datasets (GT-Vision-Lab/VQA `vqaEval.py`, and the TextVQA
evaluator that LLaVA ships as `m4c_evaluator.py`); this is an independent implementation of them.

The score of a prediction against n reference answers is the mean, over the n ways of leaving one reference
out, of ``min(1, #matching remaining references / 3)``. With the usual 10 references this gives
0.3 / 0.6 / 0.9 / 1.0 for 1 / 2 / 3 / >=4 matching humans. TextVQA's evaluator requires 10 references;
vqaEval.py applies the same formula to any n >= 2 (so e.g. 3 identical references give at most 2/3), and so
do we. With a single reference the formula is identically 0, so we score it as normalized exact match
instead (our one deviation).
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Mapping, Sequence

# Characters that the official normalizer removes or turns into spaces (note: not "." nor "'", ":").
_PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`",
                ",", "?", "!")
# A comma between two digits ("1,000") anywhere in the answer switches every punctuation mark to deletion.
_DIGIT_COMMA_DIGIT = re.compile(r"\d,\d")
# A period not followed by a digit is deleted ("yes." -> "yes", "3.5" stays). The official pattern starts with
# "(?!<=\d)", a typo for a lookbehind that matches nothing, so only the lookahead has an effect.
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")
# The official script passes re.UNICODE (== 32) as `count`, so at most 32 periods are removed. Kept for exactness.
_MAX_PERIODS_REMOVED = 32

_NUMBER_WORDS: Mapping[str, str] = MappingProxyType({
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10",
})
_ARTICLES = frozenset({"a", "an", "the"})


def _contractions() -> Mapping[str, str]:
    """The official contractions table: a word spelled without (some of) its apostrophes -> canonical form.

    Written as "canonical: variant variant ..." rows. The official table also lists capitalised keys
    ("Im", "Ive", "Id've"); words are lower-cased before the lookup, so those can never match and are omitted.
    It also maps "somebody'd" to "somebodyd" (reversed in the original); we keep that entry as published.
    """
    rows = """
    ain't: aint | aren't: arent | can't: cant | could've: couldve | couldn't: couldnt
    couldn't've: couldn'tve couldnt've | didn't: didnt | doesn't: doesnt | don't: dont | hadn't: hadnt
    hadn't've: hadnt've hadn'tve | hasn't: hasnt | haven't: havent | he'd: hed | he'd've: hed've he'dve
    he's: hes | how'd: howd | how'll: howll | how's: hows | isn't: isnt | it'd: itd | it'd've: itd've it'dve
    it'll: itll | let's: let's | ma'am: maam | mightn't: mightnt | mightn't've: mightnt've mightn'tve
    might've: mightve | mustn't: mustnt | must've: mustve | needn't: neednt | not've: notve | o'clock: oclock
    oughtn't: oughtnt | 'ow's'at: ow's'at 'ows'at 'ow'sat | shan't: shant | she'd've: shed've she'dve
    she's: she's | should've: shouldve | shouldn't: shouldnt | shouldn't've: shouldnt've shouldn'tve
    somebodyd: somebody'd | somebody'd've: somebodyd've somebody'dve | somebody'll: somebodyll
    somebody's: somebodys | someone'd: someoned | someone'd've: someoned've someone'dve
    someone'll: someonell | someone's: someones | something'd: somethingd
    something'd've: somethingd've something'dve | something'll: somethingll | that's: thats
    there'd: thered | there'd've: thered've there'dve | there're: therere | there's: theres | they'd: theyd
    they'd've: theyd've they'dve | they'll: theyll | they're: theyre | they've: theyve | 'twas: twas
    wasn't: wasnt | we'd've: wed've we'dve | we've: weve | weren't: werent | what'll: whatll
    what're: whatre | what's: whats | what've: whatve | when's: whens | where'd: whered | where's: wheres
    where've: whereve | who'd: whod | who'd've: whod've who'dve | who'll: wholl | who's: whos
    who've: whove | why'll: whyll | why're: whyre | why's: whys | won't: wont | would've: wouldve
    wouldn't: wouldnt | wouldn't've: wouldnt've wouldn'tve | y'all: yall | y'all'll: yall'll y'allll
    y'all'd've: yall'd've y'alld've y'all'dve | you'd: youd | you'd've: youd've you'dve | you'll: youll
    you're: youre | you've: youve
    """
    table: dict[str, str] = {}
    for row in rows.replace("\n", "|").split("|"):
        if row.strip():
            canonical, variants = row.split(":")
            table.update((v, canonical.strip()) for v in variants.split())
    return MappingProxyType(table)


_CONTRACTIONS = _contractions()


def process_punctuation(text: str) -> str:
    """The official punctuation rule (VQA `processPunctuation`).

    Each mark is deleted when it touches a space in the input, or when the input contains a digit-comma-digit
    anywhere; otherwise it becomes a space. Then periods not followed by a digit are deleted.
    """
    has_digit_comma = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for p in _PUNCTUATION:
        # The conditions look at the original text, not at the partly processed one, as the official code does.
        if has_digit_comma or (p + " " in text or " " + p in text):
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_NOT_BEFORE_DIGIT.sub("", out, count=_MAX_PERIODS_REMOVED)


def process_digit_article(text: str) -> str:
    """Lower-case, number words -> digits, drop articles, expand contractions, single spaces."""
    words = [_NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    return " ".join(_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES)


def normalize_vqa_answer(text: str) -> str:
    """The EvalAI answer processor used by TextVQA's evaluator and by LLaVA's VQA v2 submission script.

    Lower-case, drop "," and "?", split off "'s" (" 's"), whitespace to spaces, then the official
    punctuation and digit/article rules.
    """
    text = text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(text))


def _leave_one_out(prediction: str, references: Sequence[str]) -> float:
    """Mean over leave-one-out subsets of min(1, matches/3); normalized exact match for one reference."""
    if not references:
        raise ValueError("no reference answers")
    if len(references) == 1:
        return float(prediction == references[0])
    matches = [ref == prediction for ref in references]
    total = sum(matches)
    # Leaving reference i out leaves `total - matches[i]` matching references.
    return sum(min(1.0, (total - m) / 3.0) for m in matches) / len(references)


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """TextVQA / VQA soft accuracy in [0, 1], as TextVQA's official evaluator computes it.

    Prediction and every reference go through `normalize_vqa_answer`; see the module docstring for the
    leave-one-out formula and the single-reference case.
    """
    return _leave_one_out(normalize_vqa_answer(prediction),
                          [normalize_vqa_answer(a) for a in answers])


def vqav2_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """VQA v2 accuracy in [0, 1]: what the official VQA v2 server gives the answer LLaVA would upload.

    LLaVA's `convert_vqav2_for_submission.py` passes the model output through `normalize_vqa_answer`; the
    official `vqaEval.py` then strips newlines/tabs/outer spaces and, only when the references are not all
    identical, applies `process_punctuation` + `process_digit_article` to both sides (it never splits "'s",
    so e.g. "men's" references do not match the uploaded "men 's"). Unanimous references are compared as is.
    """
    def clean(s: str) -> str:
        return s.replace("\n", " ").replace("\t", " ").strip()

    pred = clean(normalize_vqa_answer(prediction))
    refs = [clean(a) for a in answers]
    if len(set(refs)) > 1:
        refs = [process_digit_article(process_punctuation(r)) for r in refs]
        pred = process_digit_article(process_punctuation(pred))
    return _leave_one_out(pred, refs)


def vqav2_accuracy_lmms_eval(prediction: str, answers: Sequence[str]) -> float:
    """VQA v2 accuracy in [0, 1] as lmms-eval's ``vqav2_val`` computes it (``vqav2_process_results``).

    It differs from `vqav2_accuracy` in two ways: the prediction is not passed through the EvalAI answer
    processor first (no lower-casing before the punctuation rule, no "'s" split, "," and "?" handled by the
    punctuation rule), and `process_punctuation` + `process_digit_article` are applied to both sides even
    when the references are unanimous. Newlines and tabs become spaces and both sides are stripped first.
    """
    def clean(s: str) -> str:
        return process_digit_article(process_punctuation(s.replace("\n", " ").replace("\t", " ").strip()))

    return _leave_one_out(clean(prediction), [clean(a) for a in answers])
