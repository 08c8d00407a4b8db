"""Task `mcq`: ScienceQA-like multiple choice about one handwritten digit (scikit-learn's digits).

Simple image, heavy text: a "Context:" paragraph that teaches the rule (like a ScienceQA lecture), a
question about the digit d in the image, and four options A-D. Each template needs d read from the image,
then one or two steps over the text: match d's name among the options, apply the stated rule, or look d
up in a table given in the context (shuffled per question, so it must be read, not memorised). The
correct letter is balanced over A-D, so guessing one letter scores exactly 25.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

from .writer import IMAGE_SIZE, MinimixConfig, Sample, pixel_hash, rng_for

LETTERS = "ABCD"
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ANIMALS = ("cat", "dog", "bird", "fish", "frog", "horse", "mouse", "tiger", "rabbit", "snake")
# Shares of the 1,797 digits reserved for the test and validation images; the rest train.
TEST_FRACTION, VAL_FRACTION = 0.2, 0.1


def _parity_size(d: int) -> str:
    return f"{'even' if d % 2 == 0 else 'odd'} and {'less than five' if d < 5 else 'five or more'}"


@dataclass(frozen=True)
class McqTemplate:
    """A family of questions about the digit d."""

    name: str
    """Stored in the annotation so the answer can be checked independently."""
    context: str
    """The "Context:" paragraph; formatted with the template's parameters."""
    question: str
    """The question line."""
    params: Callable[[np.random.Generator], dict]
    """Draws the template's parameters (e.g. a lookup table)."""
    solve: Callable[[int, dict], str]
    """The correct option's text for digit d."""
    pool: Callable[[int, dict], list[str]]
    """Candidate options; three wrong ones are drawn from it (the answer is removed first)."""


def _no_params(rng: np.random.Generator) -> dict:
    return {}


def _animal_table(rng: np.random.Generator) -> dict:
    return {"animals": [ANIMALS[i] for i in rng.permutation(len(ANIMALS))]}


def _table_text(p: dict) -> str:
    return "; ".join(f"{d} means {a}" for d, a in enumerate(p["animals"]))


TEMPLATES = (
    McqTemplate(
        "name",
        "Numbers can be written with digits or spelled out with words. The digit 0 is written zero, 1 is one, "
        "2 is two, and so on up to 9, which is nine. A handwritten digit can look messy, but it still stands "
        "for exactly one of these ten numbers.",
        "Which word names the digit shown in the image?",
        _no_params, lambda d, p: DIGIT_WORDS[d], lambda d, p: list(DIGIT_WORDS)),
    McqTemplate(
        "parity",
        "A whole number is even when it can be split into two equal groups, like 0, 2, 4, 6 and 8. It is odd "
        "when one is always left over, like 1, 3, 5, 7 and 9. Every digit is either less than five or five "
        "or more.",
        "Which statement describes the digit shown in the image?",
        _no_params, lambda d, p: _parity_size(d), lambda d, p: [_parity_size(x) for x in (3, 4, 5, 6)]),
    McqTemplate(
        "next",
        "When we count, each number is followed by the number that is one larger. After 3 comes 4, and after "
        "9 comes 10. Counting backwards, each number is preceded by the number that is one smaller.",
        "Which number comes right after the digit shown in the image?",
        _no_params, lambda d, p: str(d + 1), lambda d, p: [str(x) for x in range(max(0, d - 2), d + 5)]),
    McqTemplate(
        "code",
        "In a class game, every digit is a secret code for an animal. The code table for this round is: "
        "{table}. A player shows a card with one digit, and the others must name the animal it stands for.",
        "The card in the image shows the digit. Which animal does it stand for?",
        _animal_table, lambda d, p: p["animals"][d], lambda d, p: list(ANIMALS)),
)


def make_options(t: McqTemplate, d: int, p: dict, answer_index: int,
                 rng: np.random.Generator) -> list[str]:
    """Four distinct options: three wrong ones drawn from the template's pool, the answer at `answer_index`."""
    answer = t.solve(d, p)
    pool = [v for v in dict.fromkeys(t.pool(d, p)) if v != answer]
    wrong = [pool[i] for i in rng.choice(len(pool), size=3, replace=False)]
    return wrong[:answer_index] + [answer] + wrong[answer_index:]


def question_text(t: McqTemplate, p: dict, options: list[str]) -> str:
    """Context paragraph, question and lettered options, one per line (LLaVA's ScienceQA layout)."""
    context = t.context.format(table=_table_text(p)) if "animals" in p else t.context
    listing = "\n".join(f"{letter}. {value}" for letter, value in zip(LETTERS, options))
    return f"Context: {context}\n{t.question}\n{listing}"


def render_digit(pixels: np.ndarray) -> Image.Image:
    """An 8x8 digit (0-16, high = ink) as dark ink on white paper, 64x64 RGB.

    Upsampled by pixel replication (each source pixel becomes an 8x8 block), so no detail is invented and
    the image stays as simple as the data.
    """
    grey = Image.fromarray(np.rint(255.0 - pixels * (255.0 / 16.0)).astype(np.uint8), "L")
    return grey.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.NEAREST).convert("RGB")


def digit_pools(seed: int, count: int) -> dict[str, list[int]]:
    """Disjoint "train", "val" and "test" lists of indices into load_digits(), fixed by the seed alone."""
    perm = rng_for(seed, "mcq", "digit-split").permutation(count).tolist()
    n_test, n_val = round(count * TEST_FRACTION), round(count * VAL_FRACTION)
    return {"test": sorted(perm[:n_test]), "val": sorted(perm[n_test:n_test + n_val]),
            "train": sorted(perm[n_test + n_val:])}


def generate(split: str, n: int, cfg: MinimixConfig, exclude: frozenset[str]) -> list[Sample]:
    """`n` questions on digits of `split`'s pool (cycling through it if n is larger), skipping `exclude`.

    Templates rotate, and within each block of four questions the answer takes each letter once.
    """
    digits = load_digits()
    pool = digit_pools(cfg.seed, len(digits.target))[split]
    images = {i: render_digit(digits.images[i]) for i in pool}
    usable = [i for i in pool if pixel_hash(images[i]) not in exclude]
    if not usable:
        raise ValueError(f"no {split} digit image is left after excluding other splits' images")
    rng = rng_for(cfg.seed, "mcq", split)
    order = [usable[i] for i in rng.permutation(len(usable))]
    samples = []
    letters: list[int] = []
    for i in range(n):
        if not letters:
            letters = rng.permutation(len(LETTERS)).tolist()
        index = order[i % len(order)]
        d = int(digits.target[index])
        t = TEMPLATES[i % len(TEMPLATES)]
        p = t.params(rng)
        answer = letters.pop()
        options = make_options(t, d, p, answer, rng)
        samples.append(Sample(
            id=f"mcq-{split}-{i:05d}",
            task="mcq",
            image=images[index],
            image_name=f"mcq/{split}/digit_{index:04d}.png",
            text=question_text(t, p, options),
            answers=(LETTERS[answer],),
            question_extra={"choices": options},
            annotation_extra={"digit": d, "source_index": index, "template": t.name, "params": p},
        ))
    return samples
