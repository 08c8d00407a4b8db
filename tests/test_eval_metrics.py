"""Metrics against cases derived by hand from the official definitions (VQA vqaEval.py, TextVQA's evaluator,
the RRC DocVQA ANLS script, pix2struct's ChartQA relaxed accuracy, LLaVA's ScienceQA parser, lmms-eval's
ScienceQA and VQAv2 rules, coco-caption), and against independent re-implementations of LLaVA's and lmms-eval's
ScienceQA rules on fuzzed answers."""

from __future__ import annotations

import math
import random
import re
import shutil

import pytest

from eval.metrics import METRICS, Metric, SampleError, anls, bleu4, cider, exact_match, extract_choice, mc_accuracy
from eval.metrics import normalize_vqa_answer, relaxed_accuracy, vqa_accuracy, vqav2_accuracy, vqav2_accuracy_lmms_eval
from eval.metrics.text import levenshtein
from eval.metrics.vqa import process_punctuation


@pytest.mark.parametrize("raw, normalized", [
    ("Two", "2"),                      # number words become digits
    ("The Cat", "cat"),                # articles dropped, lower-cased
    ("none", "0"), ("ten", "10"),
    ("dont", "don't"),                 # contractions table
    ("1,000", "1000"),                 # commas removed
    ("3.5", "3.5"),                    # a period before a digit stays
    ("Yes.", "yes"),                   # other periods go
    ("a.m.", "am"),
    ("hello-world", "hello world"),    # punctuation inside a word becomes a space...
    ("hello - world", "hello world"),  # ...and is deleted where it touches a space
    ("(red)", "red"),
    ("b/w", "b w"),
    ("What?", "what"),
    ("it's", "it 's"),                 # "'s" is split off
    ("  two\tdogs\n", "2 dogs"),
])
def test_normalize_vqa_answer(raw, normalized):
    assert normalize_vqa_answer(raw) == normalized


def test_punctuation_rule_details():
    # A digit-comma-digit anywhere switches every mark to deletion, even away from the number.
    assert process_punctuation("x-ray 1,5") == "xray 15"
    assert process_punctuation("x-ray 15") == "x ray 15"
    # The official script removes at most 32 periods (it passes re.UNICODE == 32 as the count).
    assert process_punctuation("." * 40) == "." * 8


@pytest.mark.parametrize("matches, expected", [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)])
def test_vqa_accuracy_ten_references(matches, expected):
    refs = ["blue"] * matches + ["red"] * (10 - matches)
    assert vqa_accuracy("Blue.", refs) == pytest.approx(expected)
    assert vqav2_accuracy("Blue.", refs) == pytest.approx(expected)


def test_vqa_accuracy_fewer_references():
    # Official leave-one-out with 3 identical references: each subset keeps 2 matches -> 2/3.
    assert vqa_accuracy("cat", ["cat", "cat", "cat"]) == pytest.approx(2 / 3)
    assert vqa_accuracy("cat", ["cat", "dog"]) == pytest.approx(1 / 6)
    # One reference: the formula is always 0, so we use normalized exact match.
    assert vqa_accuracy("Two", ["2"]) == 1.0 and vqa_accuracy("3", ["2"]) == 0.0
    with pytest.raises(ValueError):
        vqa_accuracy("x", [])


def test_vqav2_follows_the_official_script_not_textvqa():
    # Unanimous references are compared unprocessed by vqaEval.py; LLaVA's upload is "2".
    assert vqa_accuracy("two", ["Two"] * 10) == 1.0 and vqav2_accuracy("two", ["Two"] * 10) == 0.0
    assert vqav2_accuracy("Yes.", ["yes"] * 10) == 1.0
    # vqaEval.py never splits "'s", LLaVA's upload does: possessive answers do not match on the server.
    refs = ["men's"] * 9 + ["mens"]
    assert vqa_accuracy("men's", refs) == 1.0 and vqav2_accuracy("men's", refs) == 0.0
    # Differing references are normalized on both sides.
    assert vqav2_accuracy("YES", ["Yes"] * 5 + ["yes!"] * 5) == 1.0


def test_levenshtein():
    assert levenshtein("kitten", "sitting") == 3 and levenshtein("", "abc") == 3 and levenshtein("ab", "ab") == 0


def test_anls():
    assert anls(" PARIS ", ["paris"]) == 1.0
    assert anls("Pari", ["Paris"]) == pytest.approx(0.8)
    assert anls("ab", ["ac"]) == 0.5                           # exactly the threshold is kept
    assert anls("abc", ["abd", "xyz"]) == pytest.approx(2 / 3)  # max over references
    assert anls("abc", ["xyz"]) == 0.0
    assert anls("", [""]) == 1.0
    # The distance is taken after whitespace normalization but divided by the raw length (RRC evaluator).
    assert anls("  paris  ", ["Pariss"]) == pytest.approx(1 - 1 / 9)


@pytest.mark.parametrize("prediction, answers, expected", [
    ("12", ["12.5"], 1.0),      # |12 - 12.5| / 12.5 = 4% <= 5%
    ("11.8", ["12.5"], 0.0),    # 5.6%
    ("45%", ["0.45"], 1.0),     # "%" divides by 100
    ("45", ["45%"], 0.0),       # ...on the side that has it only
    ("0", ["0"], 1.0),          # a zero target needs an exact string match
    ("0.0", ["0"], 0.0),
    ("1,000", ["1000"], 0.0),   # thousands separators are not numbers
    (" Yes ", ["yes"], 1.0),    # text: case-insensitive exact match
    ("Sales", ["Revenue", "sales"], 1.0),
])
def test_relaxed_accuracy(prediction, answers, expected):
    assert relaxed_accuracy(prediction, answers) == expected


def test_exact_match():
    assert exact_match("  The Eiffel   Tower. ", ["the eiffel tower"]) == 1.0
    assert exact_match("u.s.a", ["usa"]) == 0.0
    assert exact_match("Yes", ["no", "yes."]) == 1.0


CHOICES = ["photosynthesis", "respiration", "black cat", "cat"]


def llava_science_qa(pred_text: str, num_choices: int, answer: int) -> bool:
    """LLaVA's eval_science_qa.py scoring of one answer, re-implemented from its definition (options A-E)."""
    options = ["A", "B", "C", "D", "E"]
    if pred_text in options:
        letter = pred_text
    elif len(pred_text) >= 3 and pred_text[0] in options and pred_text[1:3] == ". ":
        letter = pred_text[0]
    else:
        found = re.findall(r"The answer is ([A-Z]).", pred_text)
        letter = found[0] if len(found) == 1 else "FAILED"
    index = options.index(letter) if letter in options[:num_choices] else -1
    return index == answer


def lmms_eval_science_qa(pred: str, target_letter: str) -> bool:
    """lmms-eval's sqa_process_results, re-implemented from its definition."""
    target, pred = target_letter.strip().lower(), pred.strip()
    if pred.lower() == target:
        return True
    return len(pred) >= 2 and pred[0].isupper() and pred[1] == "." and pred[0].lower() == target


@pytest.mark.parametrize("text, right", [
    ("B", True), ("B. respiration", True), ("The answer is B.", True), ("Because... The answer is B!", True),
    # The list: all of these are wrong under LLaVA's rules.
    ("b", False), ("(B)", False), ("B)", False), ("[B]", False), ("B:", False), ("Answer: B", False),
    ("The answer is B", False), ("respiration", False), ("B.", False), (" B ", True),  # LLaVA's text is stripped
    ("The answer is B. The answer is B.", False),  # two phrases: LLaVA takes neither
    ("E", False),                                   # past the last of the 4 options
])
def test_llava_rule_is_the_default(text, right):
    assert mc_accuracy(text, "B", CHOICES) == float(right) == float(llava_science_qa(text.strip(), 4, 1))
    assert METRICS["mc_accuracy"].compute({"q": text}, {"q": ["B"]}, {"q": {"choices": CHOICES}}) == float(right)


def test_llava_and_lmms_eval_rules_equal_their_definitions_on_fuzzed_answers():
    pieces = ["", "A", "B", "b", "C", "E", "F", "(B)", ".", ". ", " ", "The answer is ", "The answer is B.",
              "Answer: ", "x", "\n", "B.", "c. cat", "The answer is", "is"]
    rng = random.Random(0)
    for _ in range(4000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 4))).strip()
        n, answer = rng.randint(2, 5), rng.randint(0, 4)
        answer = min(answer, n - 1)
        letter = "ABCDE"[answer]
        choices = [f"option {i}" for i in range(n)]
        assert mc_accuracy(text, letter, choices) == float(llava_science_qa(text, n, answer)), text
        assert mc_accuracy(text, letter, choices, "lmms_eval") == float(lmms_eval_science_qa(text, letter)), text


def test_lmms_eval_rule():
    assert [mc_accuracy(t, "B", rule="lmms_eval") for t in ("b", "B.", "B.photo", "B", "(B)", "The answer is B.")] \
        == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]


@pytest.mark.parametrize("text, letter", [
    ("B", "B"), ("b", "B"), ("(B)", "B"), ("B.", "B"), ("[c]", "C"),
    ("B. photosynthesis", "B"),                 # LLaVA's prefix rule wins over the text
    ("(b) respiration", "B"), ("D) cat", "D"),
    ("The answer is B.", "B"), ("Answer: C", "C"), ("answer: b", "B"), ("The answer is (c) because", "C"),
    ("the correct answer is option B", "B"),
    ("b) The answer is A.", "A"),               # LLaVA's "The answer is X." comes before the lenient rules
    ("The answer is A. The answer is B.", None),  # answer phrases disagree
    ("Photosynthesis.", "A"),                   # choice text
    ("I think it is respiration", "B"),
    ("the answer is a cat", "D"),               # lower-case "a" is an article; "cat" is choice D
    ("a black cat", None),                      # contains two choices
    ("E", None), ("F. something", None),        # past the last choice
    ("no idea", None), ("", None),
])
def test_lenient_extractor_is_opt_in(text, letter):
    assert extract_choice(text, CHOICES, rule="lenient") == letter
    assert METRICS["mc_accuracy_lenient"].compute({"q": text}, {"q": ["B"]}, {"q": {"choices": CHOICES}}) \
        == float(letter == "B")


def test_mc_accuracy():
    assert mc_accuracy("The answer is B.", "B") == 1.0
    assert mc_accuracy("respiration", "b", CHOICES, "lenient") == 1.0 and mc_accuracy("respiration", "b", CHOICES) == 0
    assert extract_choice("E") == "E"           # without choices any letter is accepted
    with pytest.raises(ValueError, match="not an option letter"):
        mc_accuracy("B", "photosynthesis")
    with pytest.raises(ValueError, match="past the last"):
        mc_accuracy("B", "E", ["x", "y"])
    with pytest.raises(SampleError, match="no 'choices'"):  # LLaVA's rule cannot tell a letter past the options
        METRICS["mc_accuracy"].compute({"q": "B"}, {"q": ["B"]}, {"q": {}})
    assert METRICS["mc_accuracy"].needs_questions and not METRICS["mc_accuracy_lmms_eval"].needs_questions


@pytest.mark.parametrize("prediction, answers, ours, lmms", [
    # Unanimous references are not normalized by the official script; lmms-eval normalizes them anyway.
    ("Two", ["2"] * 10, 1.0, 1.0),
    ("men's", ["men's"] * 10, 0.0, 1.0),             # LLaVA's upload splits "'s"; lmms-eval compares "men's"
    ("yes.", ["Yes."] * 10, 0.0, 1.0),                # unanimous "Yes." stays as is for the server
    ("red, white", ["red white"] * 3 + ["red"] * 7, 0.9, 0.9),  # 3 matches: (3 x 2/3 + 7 x 1) / 10
    ("A dog", ["dog"] * 2 + ["cat"] * 8, 0.6, 0.6),
])
def test_vqav2_lmms_eval_normalization(prediction, answers, ours, lmms):
    assert vqav2_accuracy(prediction, answers) == pytest.approx(ours)
    assert vqav2_accuracy_lmms_eval(prediction, answers) == pytest.approx(lmms)


def test_metric_compute_counts_missing_as_wrong_and_names_bad_samples():
    metric = METRICS["exact_match"]
    assert metric.compute({"1": "yes", "2": None}, {"1": ["yes"], "2": ["no"]}) == 0.5
    with pytest.raises(SampleError, match="question_id 'q7'"):
        METRICS["mc_accuracy"].compute({"q7": "A"}, {"q7": ["not a letter"]})
    seen = {}

    def fake_corpus(refs, preds):
        seen.update(preds)
        return 0.25

    assert Metric("fake", corpus=fake_corpus).compute({"a": None, "b": "x"}, {"a": ["r"], "b": ["s"]}) == 0.25
    assert seen == {"a": [""], "b": ["x"]}       # a missing caption is scored as an empty one


@pytest.fixture(scope="module")
def caption_scores():
    """One Java tokenizer call per metric, shared by the caption tests."""
    return {
        # Image 1 is predicted exactly (up to case and the final period); image 2 misses the last word.
        "cider": cider({1: ["red fox jumps high"], 2: ["blue bird sings loud"]},
                       {1: ["Red fox jumps high."], 2: ["blue bird sings softly"]}),
        "bleu4": bleu4({1: ["a man is riding a brown horse on the beach"]},
                       {1: ["A man is riding a horse on the beach."]}),
    }


@pytest.mark.skipif(shutil.which("java") is None, reason="pycocoevalcap's PTB tokenizer needs Java")
def test_cider_d_matches_hand_computation(caption_scores):
    # Every n-gram occurs in one of the 2 documents, so all weights are log 2; cosines of image 2 for n = 1..4
    # are 3/4, 2/3, 1/2, 0; equal lengths give no penalty; CIDEr-D = 10 x mean over n, then over images.
    assert caption_scores["cider"] == pytest.approx((10 + 10 * (3 / 4 + 2 / 3 + 1 / 2 + 0) / 4) / 2)


@pytest.mark.skipif(shutil.which("java") is None, reason="pycocoevalcap's PTB tokenizer needs Java")
def test_bleu4_matches_hand_computation(caption_scores):
    # Precisions 9/9, 7/8, 5/7, 3/6; hypothesis 9 tokens vs reference 10 -> brevity penalty exp(1 - 10/9).
    expected = math.exp(1 - 10 / 9) * (1 * 7 / 8 * 5 / 7 * 3 / 6) ** 0.25
    assert caption_scores["bleu4"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.skipif(shutil.which("java") is None, reason="pycocoevalcap's PTB tokenizer needs Java")
def test_cider_tokenizes_in_coco_captions_two_calls():
    """The PTB tokenizer reads a line with the next in view ("no." before a number stays an abbreviation), so one
    call for references and predictions would tokenize the last reference against the first prediction."""
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    references = {1: ["Two dogs play in the snow.", "Dogs in snow."], 2: ["A man says no.", "He said no."]}
    predictions = {1: ["3 dogs play in the snow."], 2: ["a man says no"]}

    def captions(d):
        return {k: [{"caption": c} for c in v] for k, v in d.items()}

    # coco-caption's COCOEvalCap.evaluate: tokenize the references, then the results, then score.
    refs, preds = PTBTokenizer().tokenize(captions(references)), PTBTokenizer().tokenize(captions(predictions))
    official = Cider().compute_score(refs, preds)[0]
    one_call = PTBTokenizer().tokenize({**{("r", k): v for k, v in captions(references).items()},
                                        **{("p", k): v for k, v in captions(predictions).items()}})
    assert one_call[("r", 2)][1] == "he said no." and refs[2][1] == "he said no"  # the shortcut's other token
    shortcut = Cider().compute_score({k: one_call[("r", k)] for k in references},
                                     {k: one_call[("p", k)] for k in predictions})[0]
    assert cider(references, predictions) == pytest.approx(official, abs=1e-12)
    assert abs(shortcut - official) > 1e-3


def test_caption_inputs_are_checked():
    with pytest.raises(ValueError, match="exactly one predicted caption"):
        cider({1: ["a"]}, {1: ["a", "b"]})
    with pytest.raises(ValueError, match="differ in ids"):
        bleu4({1: ["a"]}, {2: ["a"]})
