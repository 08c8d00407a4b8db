"""Task `mcq`: ScienceQA-like multiple choice about a plain colour swatch and a long context.

Simple image, heavy text. The context paragraph tells a class's guessing games among sentences that do not
matter; the options are always the same four animals in one order (as in ScienceQA's many fixed-option
templates, e.g. "solid / liquid / gas"). Two question kinds alternate, and the question line says which:
  - `mascot`: which animal is the mascot of today's game? The context names today's game once, and half
    of the contexts also name yesterday's (another game, a distractor); each game's mascot is fixed.
  - `card`: which animal does the colour c of the card in the image stand for? One fixed code maps the
    eight colours to the four animals, two each.
Both facts (mascots, colour code) are knowledge the base is taught in plain sentences (`pretrain._facts`),
the way a language model knows ScienceQA's facts; fine-tuning teaches reading the context, telling the two
kinds apart, and answering with a letter.

Why fixed options and main effects: v2 asked the model to find c's name (or c's fruit, or c's animal in a
code table printed in the context) among shuffled options, which needs in-context binding (which letter
stands next to which word). The 4-layer, 128-wide language model never learned that in the demo's budget:
the fine-tuned models answered "A" to every question, and a text-only drill of the same skill stayed at
chance after 1,200 steps at batch 64 (cards 0.24, code table 0.14 on 192 held-out drills). A code where the
answer depends on a game and a colour together (a Latin square, no main effects) was not learned by the
base either (one animal for every question).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .writer import IMAGE_SIZE, MinimixConfig, Sample, pixel_hash, rng_for

LETTERS = "ABCD"
# Colour name -> base RGB; each swatch jitters it a little so no two images are the same.
SWATCHES = {"red": (215, 35, 35), "green": (40, 160, 60), "blue": (35, 70, 215), "yellow": (235, 205, 30),
            "orange": (245, 135, 25), "purple": (140, 50, 170), "black": (25, 25, 25), "pink": (245, 140, 190)}
JITTER = 18  # per channel, either way
GAMES = ("river", "forest", "desert", "mountain")
ANIMALS = ("cat", "dog", "bird", "fish")  # the options, always in this order
MASCOTS = {"river": "fish", "forest": "dog", "desert": "cat", "mountain": "bird"}
CARD_CODE = {"red": "cat", "orange": "cat", "blue": "dog", "purple": "dog", "green": "bird", "yellow": "bird",
             "black": "fish", "pink": "fish"}
KINDS = ("mascot", "card")
QUESTIONS = {"mascot": "Which animal is the mascot of today's game?",
             "card": "The card in the image shows one color. Which animal does that color stand for?"}
INTRO = ("In a class, the children play guessing games with colored cards. Every game has its own animal "
         "as a mascot, and every color on a card stands for an animal.")
TODAY = "Today the class plays the {game} game."
YESTERDAY = "Yesterday it played the {game} game."
# Sentences that say nothing about the answer; each question takes a few, in a random order, around the others.
FILLER = (
    "The players sit in a circle on the floor.",
    "Each round lasts a few minutes.",
    "Whoever answers first wins a point.",
    "The teacher keeps the score on the board.",
    "The cards are shuffled before every round.",
    "Nobody may look at the code book during a round.",
    "A wrong answer costs the player one point.",
    "The game ends when the bell rings.",
    "New players watch a few rounds before they join.",
    "The winner chooses the game for the next day.",
)
FILLERS_PER_QUESTION = (2, 5)  # [low, high)
YESTERDAY_FRACTION = 0.5


def context_text(today: str, yesterday: str | None, rng: np.random.Generator) -> str:
    """INTRO, then a few FILLER sentences with TODAY (and YESTERDAY) among them at random places."""
    count = int(rng.integers(*FILLERS_PER_QUESTION))
    sentences = [FILLER[i] for i in rng.choice(len(FILLER), size=count, replace=False)]
    sentences.insert(int(rng.integers(len(sentences) + 1)), TODAY.format(game=today))
    if yesterday is not None:
        sentences.insert(int(rng.integers(len(sentences) + 1)), YESTERDAY.format(game=yesterday))
    return " ".join([INTRO, *sentences])


def question_text(context: str, kind: str) -> str:
    """Context paragraph, question and lettered options, one per line (LLaVA's ScienceQA layout)."""
    listing = "\n".join(f"{letter}. {animal}" for letter, animal in zip(LETTERS, ANIMALS))
    return f"Context: {context}\n{QUESTIONS[kind]}\n{listing}"


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

    Kinds alternate; letters are balanced within each block of four questions (guessing one letter scores
    exactly 25). A mascot question's game has the drawn letter's animal as mascot and its colour is any;
    a card question's colour is one of the two that stand for it and today's game is any.
    """
    rng = rng_for(cfg.seed, "mcq", split)
    letters: list[int] = []
    names = sorted(SWATCHES)
    samples = []
    for i in range(n):
        if not letters:
            letters = rng.permutation(len(LETTERS)).tolist()
        kind, answer = KINDS[i % len(KINDS)], letters.pop()
        animal = ANIMALS[answer]
        if kind == "mascot":
            today = next(g for g in GAMES if MASCOTS[g] == animal)
            c = names[int(rng.integers(len(names)))]
        else:
            today = GAMES[int(rng.integers(len(GAMES)))]
            options = [name for name in names if CARD_CODE[name] == animal]
            c = options[int(rng.integers(len(options)))]
        others = [g for g in GAMES if g != today]
        yesterday = others[int(rng.integers(len(others)))] if rng.random() < YESTERDAY_FRACTION else None
        image = render_swatch(c, rng)
        while pixel_hash(image) in exclude:
            image = render_swatch(c, rng)
        samples.append(Sample(
            id=f"mcq-{split}-{i:05d}",
            task="mcq",
            image=image,
            image_name=f"mcq/{split}/{i:05d}.png",
            text=question_text(context_text(today, yesterday, rng), kind),
            answers=(LETTERS[answer],),
            question_extra={"choices": list(ANIMALS)},
            annotation_extra={"kind": kind, "colour": c, "today": today, "yesterday": yesterday},
        ))
    return samples
