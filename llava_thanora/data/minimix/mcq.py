"""Task `mcq`: scikit-learn's handwritten digits with long multiple-choice arithmetic questions.

Simple image, complex text: the model must read one digit d, then follow a wordy problem about d and pick
the letter of the right option among four plausible ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

from .writer import IMAGE_SIZE, MinimixConfig, Sample, pixel_hash, rng_for

LETTERS = "ABCD"
TEST_FRACTION = 0.2  # share of the 1797 digits reserved for test images


@dataclass(frozen=True)
class McqTemplate:
    """A family of questions about the digit d."""

    name: str
    """Stored in the annotation so the answer can be checked independently."""
    params: Callable[[np.random.Generator], dict[str, int]]
    """Draws the template's integer parameters."""
    question: str
    """Question text; formatted with the parameters."""
    solve: Callable[[int, dict[str, int]], str]
    """The correct option for digit d."""
    wrong_pool: Callable[[int, dict[str, int]], list[str]] | None = None
    """All candidate options (the answer is removed); None: numeric distractors near the answer."""


def _parity(d: int, p: dict[str, int]) -> str:
    return f"d is {'even' if d % 2 == 0 else 'odd'} and {'greater' if d > p['k'] else 'not greater'} than {p['k']}"


TEMPLATES = (
    McqTemplate("linear", lambda r: {"a": int(r.integers(2, 10)), "b": int(r.integers(1, 20))},
                "Let d be the digit shown in the image. First multiply d by {a}, then add {b} to the product. "
                "Which number do you get at the end of this calculation?",
                lambda d, p: str(p["a"] * d + p["b"])),
    McqTemplate("bus", lambda r: {"a": int(r.integers(5, 15)), "b": int(r.integers(1, 5))},
                "Let d be the handwritten digit in the picture. A bus leaves the depot with exactly d passengers "
                "on board. At the first stop {a} more people get on, and at the second stop {b} people get off; "
                "nobody else gets on or off. How many passengers are on the bus after the second stop?",
                lambda d, p: str(d + p["a"] - p["b"])),
    McqTemplate("square", lambda r: {"a": int(r.integers(1, 10))},
                "Let d be the number written in the image. Compute the square of d, that is d multiplied by "
                "itself, and then subtract {a} from the result. What is the final value?",
                lambda d, p: str(d * d - p["a"])),
    McqTemplate("change", lambda r: {"a": int(r.integers(1, 6)), "c": int(r.choice([50, 100]))},
                "Let d be the digit shown in the image. Maria buys d notebooks that cost {a} dollars each and "
                "pays with a single {c}-dollar note. How many dollars of change should the cashier give back?",
                lambda d, p: str(p["c"] - p["a"] * d)),
    McqTemplate("remainder", lambda r: {"a": int(r.integers(2, 10)), "b": int(r.integers(1, 10)),
                                        "m": int(r.integers(5, 10))},
                "Let d be the digit shown in the image. Take {a} times d, add {b} to it, and divide the sum by "
                "{m}. What is the remainder of this division?",
                lambda d, p: str((p["a"] * d + p["b"]) % p["m"]),
                lambda d, p: [str(v) for v in range(p["m"])]),
    McqTemplate("parity", lambda r: {"k": int(r.integers(2, 8))},
                "Let d be the handwritten digit in the image. Decide two facts about d: whether it is an even "
                "or an odd number, and whether it is strictly greater than {k}. Which of the following "
                "statements describes d correctly?",
                _parity,
                lambda d, p: [_parity(x, p) for x in (0, 1, p["k"] + 1 + (p["k"] % 2), p["k"] + 2 - (p["k"] % 2))]),
)


def make_options(t: McqTemplate, d: int, p: dict[str, int], rng: np.random.Generator) -> tuple[list[str], int]:
    """Four distinct options (the answer and three distractors) in random order, and the answer's index."""
    answer = t.solve(d, p)
    if t.wrong_pool is not None:
        pool = [v for v in dict.fromkeys(t.wrong_pool(d, p)) if v != answer]
        wrong = [pool[i] for i in rng.choice(len(pool), size=3, replace=False)]
    else:
        # Plausible mistakes first: misreading the digit as a neighbour, then slips in the arithmetic.
        misread = [t.solve(x, p) for x in (d - 2, d - 1, d + 1, d + 2) if 0 <= x <= 9]
        slips = [str(int(answer) + k) for k in (-10, -2, -1, 1, 2, 10)]
        candidates = [misread[i] for i in rng.permutation(len(misread))] + [slips[i] for i in rng.permutation(6)]
        wrong = [v for v in dict.fromkeys(candidates) if v != answer][:3]
    options = wrong + [answer]
    order = rng.permutation(4)
    options = [options[i] for i in order]
    return options, options.index(answer)


def render_digit(pixels: np.ndarray) -> Image.Image:
    """An 8x8 digit (0-16, high = ink) as dark ink on white paper, 64x64 RGB.

    Upsampled by pixel replication (each source pixel becomes an 8x8 block), so no detail is invented and
    the image stays as simple as the data.
    """
    grey = Image.fromarray(np.rint(255.0 - pixels * (255.0 / 16.0)).astype(np.uint8), "L")
    return grey.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.NEAREST).convert("RGB")


def digit_pools(seed: int, count: int) -> dict[str, list[int]]:
    """Disjoint "train" and "test" lists of indices into load_digits(), fixed by the seed alone."""
    perm = rng_for(seed, "mcq", "digit-split").permutation(count).tolist()
    n_test = round(count * TEST_FRACTION)
    return {"test": sorted(perm[:n_test]), "train": sorted(perm[n_test:])}


def generate(split: str, n: int, cfg: MinimixConfig, exclude: frozenset[str]) -> list[Sample]:
    """`n` questions on digits of `split`'s pool (cycling through it if n is larger), skipping `exclude`."""
    digits = load_digits()
    pool = digit_pools(cfg.seed, len(digits.target))[split]
    images = {i: render_digit(digits.images[i]) for i in pool}
    usable = [i for i in pool if pixel_hash(images[i]) not in exclude]
    if not usable:
        raise ValueError(f"no {split} digit image is left after excluding test images")
    rng = rng_for(cfg.seed, "mcq", split)
    order = [usable[i] for i in rng.permutation(len(usable))]
    samples = []
    for i in range(n):
        index = order[i % len(order)]
        d = int(digits.target[index])
        t = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
        p = t.params(rng)
        options, answer = make_options(t, d, p, rng)
        listing = "\n".join(f"{letter}. {value}" for letter, value in zip(LETTERS, options))
        samples.append(Sample(
            id=f"mcq-{split}-{i:05d}",
            task="mcq",
            image=images[index],
            image_name=f"mcq/{split}/digit_{index:04d}.png",
            text=t.question.format(**p) + "\n" + listing,
            answers=(LETTERS[answer],),
            question_extra={"choices": options},
            annotation_extra={"digit": d, "source_index": index, "template": t.name, "params": p},
        ))
    return samples
