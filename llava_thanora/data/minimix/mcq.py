"""Task `mcq`: ScienceQA-like multiple choice about a plain colour swatch.

Simple image, heavy text: a "Context:" paragraph (like a ScienceQA lecture), a question about the colour c
of the one square in the image, and four options A-D. The image carries one fact that a tiny vision tower
sees at once (a colour); the work is in the text, as in ScienceQA's many questions whose image only
illustrates. Each template needs c, then one or two look-ups in the text:
  - `colour`: find c's name among the options (one step);
  - `fruit`: the context states which fruit has which colour; find c's fruit, then it among the options;
  - `code`: the context gives a code table colour -> animal, shuffled per question so it must be read
    rather than memorised; find c's line, then its animal among the options.
The correct letter is balanced over A-D, so guessing one letter scores exactly 25.

(v1 asked multi-step arithmetic about a handwritten digit; a 4-layer, 128-wide model stayed at chance,
and the tiny tower needed more steps to tell 8x8 digits apart than the demo can spend.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from .writer import IMAGE_SIZE, MinimixConfig, Sample, pixel_hash, rng_for

LETTERS = "ABCD"
# Colour name -> base RGB; each swatch jitters it a little so no two images are the same.
SWATCHES = {"red": (215, 35, 35), "green": (40, 160, 60), "blue": (35, 70, 215), "yellow": (235, 205, 30),
            "orange": (245, 135, 25), "purple": (140, 50, 170), "black": (25, 25, 25), "pink": (245, 140, 190)}
FRUITS = {"red": "cherry", "green": "lime", "blue": "blueberry", "yellow": "banana", "orange": "orange",
          "purple": "plum", "black": "blackberry", "pink": "peach"}
ANIMALS = ("cat", "dog", "bird", "fish", "frog", "horse", "mouse", "tiger", "rabbit", "snake")
JITTER = 18  # per channel, either way


@dataclass(frozen=True)
class McqTemplate:
    """One question family."""

    name: str
    """Stored in the annotation so the answer can be checked independently."""
    context: str
    """The "Context:" paragraph; formatted with `table` (the template's table as text)."""
    question: str
    """The question line."""
    params: Callable[[np.random.Generator], dict]
    """Draws the template's parameters (e.g. a code table)."""
    solve: Callable[[str, dict], str]
    """The correct option's text for colour c."""
    pool: Callable[[dict], list[str]]
    """Candidate options; three wrong ones are drawn from it (the answer is removed first)."""


def code_table(rng: np.random.Generator) -> dict:
    """A random colour -> animal code, in a random line order."""
    colours = sorted(SWATCHES)
    animals = [ANIMALS[i] for i in rng.choice(len(ANIMALS), size=len(colours), replace=False)]
    order = rng.permutation(len(colours))
    return {"code": {colours[i]: animals[i] for i in order}}


def fruit_table(rng: np.random.Generator) -> dict:
    """The fixed colour -> fruit facts, stated in a random order."""
    colours = sorted(FRUITS)
    return {"fruit": {colours[i]: FRUITS[colours[i]] for i in rng.permutation(len(colours))}}


def code_text(code: dict[str, str]) -> str:
    """E.g. "red means cat; blue means dog"."""
    return "; ".join(f"{colour} means {animal}" for colour, animal in code.items())


def fruit_text(fruit: dict[str, str]) -> str:
    """E.g. "the cherry is red; the lime is green"."""
    return "; ".join(f"the {name} is {colour}" for colour, name in fruit.items())


TEMPLATES = (
    McqTemplate(
        "colour",
        "Colors have names. Red is the color of blood and ripe tomatoes, green the color of grass, blue the "
        "color of a clear sky, yellow the color of lemons, orange the color of carrots, purple the color of "
        "grapes, black the color of coal and pink the color of flamingos.",
        "What is the color of the square in the image?",
        lambda rng: {}, lambda c, p: c, lambda p: sorted(SWATCHES)),
    McqTemplate(
        "fruit",
        "Many fruits are named for their color, or have a color that is easy to remember. In this lesson "
        "the facts are: {table}. Each fruit has exactly one color here.",
        "Which fruit has the color of the square in the image?",
        fruit_table, lambda c, p: p["fruit"][c], lambda p: list(p["fruit"].values())),
    McqTemplate(
        "code",
        "In a class game, every color is a secret code for an animal. The code table for this round is: "
        "{table}. A player shows a card of one color, and the others must name the animal it stands for.",
        "The card in the image shows the color. Which animal does it stand for?",
        code_table, lambda c, p: p["code"][c], lambda p: list(p["code"].values())),
)


def make_options(t: McqTemplate, c: str, p: dict, answer_index: int, rng: np.random.Generator) -> list[str]:
    """Four distinct options: three wrong ones drawn from the template's pool, the answer at `answer_index`."""
    answer = t.solve(c, p)
    pool = [v for v in dict.fromkeys(t.pool(p)) if v != answer]
    wrong = [pool[i] for i in rng.choice(len(pool), size=3, replace=False)]
    return wrong[:answer_index] + [answer] + wrong[answer_index:]


def question_text(t: McqTemplate, p: dict, options: list[str]) -> str:
    """Context paragraph, question and lettered options, one per line (LLaVA's ScienceQA layout)."""
    table = code_text(p["code"]) if "code" in p else fruit_text(p["fruit"]) if "fruit" in p else ""
    context = t.context.format(table=table)
    listing = "\n".join(f"{letter}. {value}" for letter, value in zip(LETTERS, options))
    return f"Context: {context}\n{t.question}\n{listing}"


def render_swatch(colour: str, rng: np.random.Generator) -> Image.Image:
    """One filled square of `colour` (jittered) on an off-white page, at a random place and size."""
    page = tuple(int(v) for v in rng.integers(235, 256, size=3))
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), page)
    ink = tuple(int(np.clip(v + rng.integers(-JITTER, JITTER + 1), 0, 255)) for v in SWATCHES[colour])
    side = int(rng.integers(24, 45))
    x, y = (int(v) for v in rng.integers(2, IMAGE_SIZE - side - 1, size=2))
    ImageDraw.Draw(image).rectangle((x, y, x + side - 1, y + side - 1), fill=ink)
    return image


def generate(split: str, n: int, cfg: MinimixConfig, exclude: frozenset[str]) -> list[Sample]:
    """`n` questions of `split`, each on a fresh swatch whose pixels are not in `exclude`.

    Templates rotate; colours are balanced within each block of 8 questions and letters within each
    block of four.
    """
    rng = rng_for(cfg.seed, "mcq", split)
    colours_cycle: list[str] = []
    letters: list[int] = []
    samples = []
    for i in range(n):
        if not letters:
            letters = rng.permutation(len(LETTERS)).tolist()
        if not colours_cycle:
            names = sorted(SWATCHES)
            colours_cycle = [names[j] for j in rng.permutation(len(names))]
        c = colours_cycle.pop()
        image = render_swatch(c, rng)
        while pixel_hash(image) in exclude:
            image = render_swatch(c, rng)
        t = TEMPLATES[i % len(TEMPLATES)]
        p = t.params(rng)
        answer = letters.pop()
        options = make_options(t, c, p, answer, rng)
        samples.append(Sample(
            id=f"mcq-{split}-{i:05d}",
            task="mcq",
            image=image,
            image_name=f"mcq/{split}/{i:05d}.png",
            text=question_text(t, p, options),
            answers=(LETTERS[answer],),
            question_extra={"choices": options},
            annotation_extra={"colour": c, "template": t.name},
        ))
    return samples
