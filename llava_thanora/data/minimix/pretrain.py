"""pretrain.json: a generic "describe the image" corpus for a base model that sees, reads and talks.

Same four image sources as the tasks, but only from their training side (never a validation or test
image), and in a different format: an open instruction answered by a plain sentence, never a one-word
answer, a letter or an option list, so fine-tuning on minimix still has something to teach.

Each source describes its images with ONE fixed sentence pattern. With several interchangeable patterns
the tiny model spends its capacity on guessing the pattern: in a measured run (300 steps on digits alone)
three patterns left digit naming at chance, one pattern reached 77% on validation digits.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image

from . import caption, mcq, ocr, vqa
from .writer import MinimixConfig, Sample, pixel_hash, rng_for

PROMPTS = ("Describe this image.", "What do you see in this picture?", "Give a short description of the image.",
           "Tell me what this image contains.")
# (image, image name, description, prompt); prompt None: one of PROMPTS, drawn when the samples are assembled.
Draft = tuple[Image.Image, str, str, str | None]


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _easy_vqa(n: int, cfg: MinimixConfig, exclude: frozenset[str]) -> list[Draft]:
    """Single-shape images of easy-VQA's train split, described by colour and shape."""
    rng = rng_for(cfg.seed, "pretrain", "vqa")
    data = vqa.load_split("train")
    attributes = vqa.image_attributes(data)
    known = sorted(attributes)
    ids = [known[i] for i in rng.permutation(len(known))]
    images = {i: vqa.load_image(data.image_paths[i]) for i in ids[:n]}
    usable = [i for i in ids[:n] if pixel_hash(images[i]) not in exclude]
    if n and not usable:
        raise ValueError("no easy-VQA train image is left after excluding held-out images")
    drafts = []
    for k in range(n):
        image_id = usable[k % len(usable)]
        colour, shape = attributes[image_id]
        drafts.append((images[image_id], f"pretrain/easyvqa_{image_id:04d}.png",
                       f"The image shows a single {colour} {shape} on a plain background.", None))
    return drafts


def _checks(n: int, cfg: MinimixConfig, exclude: frozenset[str]) -> list[Draft]:
    """easy-VQA train images with a yes/no check of one attribute, answered by a sentence ending in yes or no.

    Why: the base must have SAID a token before a LoRA (which leaves the output layer alone) can make it the
    answer. Measured on a base whose corpus never said " B", " C", " D" or a bare character: a LoRA trained
    150 steps on mcq + ocr alone put 55% on " A" and about 0.3% on each other letter (per-token loss 5-6)
    and scored 25 (chance) on validation mcq.
    """
    rng = rng_for(cfg.seed, "pretrain", "checks")
    data = vqa.load_split("train")
    attributes = vqa.image_attributes(data)
    known = sorted(attributes)
    ids = [known[i] for i in rng.permutation(len(known))]
    colours = sorted({c for c, _ in attributes.values()})
    drafts = []
    for image_id in ids:
        if len(drafts) == n:
            break
        image = vqa.load_image(data.image_paths[image_id])
        if pixel_hash(image) in exclude:
            continue
        k, (colour, shape) = len(drafts), attributes[image_id]
        # Shapes are asked about in two of every four checks, colours in the other two; odd checks are "yes".
        asks_shape, yes = k % 4 < 2, k % 2 == 1
        truth, pool = (shape, vqa.SHAPES) if asks_shape else (colour, colours)
        asked = truth if yes else next(pool[int(j)] for j in rng.permutation(len(pool)) if pool[int(j)] != truth)
        drafts.append((image, f"pretrain/check_{image_id:04d}.png",
                       f"It is a {colour} {shape}, so the answer is {'yes' if yes else 'no'}.",
                       f"Is the shape in the image {'a ' + asked if asks_shape else asked}?"))
    if len(drafts) < n:
        raise ValueError(f"easy-VQA has {len(drafts)} usable train images for {n} yes/no checks")
    return drafts


def _swatches(n: int, cfg: MinimixConfig, exclude: frozenset[str]) -> list[Draft]:
    """Fresh colour swatches (the mcq task's images), named by colour."""
    rng = rng_for(cfg.seed, "pretrain", "swatch")
    names = sorted(mcq.SWATCHES)
    drafts = []
    for k in range(n):
        colour = names[k % len(names)]
        image = mcq.render_swatch(colour, rng)
        while pixel_hash(image) in exclude:
            image = mcq.render_swatch(colour, rng)
        drafts.append((image, f"pretrain/swatch_{k:05d}.png",
                       f"The image shows a plain {colour} square on a white page.", None))
    return drafts


def _texts(n: int, cfg: MinimixConfig, exclude: frozenset[str]) -> list[Draft]:
    """Freshly rendered characters: the character itself (unquoted, so the base learns to SAY the token that
    the ocr task answers with), then its ink colour."""
    rng = rng_for(cfg.seed, "pretrain", "ocr")
    fonts = ocr.FontBank(ocr.find_fonts(cfg.system_fonts))
    drafts = []
    for k in range(n):
        content = ocr.random_text(rng)
        rendered = ocr.render_text_image(content, rng, fonts)
        while pixel_hash(rendered.image) in exclude:
            rendered = ocr.render_text_image(content, rng, fonts)
        drafts.append((rendered.image, f"pretrain/text_{k:05d}.png",
                       f"The character {content} is written in {rendered.ink}.", None))
    return drafts


def _scenes(n: int, cfg: MinimixConfig, exclude: frozenset[str]) -> list[Draft]:
    """Fresh shape scenes, listed in reading order by size, colour and kind (not by position)."""
    rng = rng_for(cfg.seed, "pretrain", "caption")
    drafts = []
    for k in range(n):
        scene = caption.random_scene(rng)
        image = caption.draw_scene(scene, rng)
        while pixel_hash(image) in exclude:
            scene = caption.random_scene(rng)
            image = caption.draw_scene(scene, rng)
        parts = [f"a {'small' if s.radius < caption.LARGE_RADIUS else 'large'} {s.noun}"
                 for s in caption.reading_order(scene)]
        drafts.append((image, f"pretrain/scene_{k:05d}.png",
                       f"This drawing contains {caption.join_phrases(parts)}.", None))
    return drafts


def _facts(n: int, cfg: MinimixConfig, exclude: frozenset[str]) -> list[Draft]:
    """The knowledge the mcq task asks for, as plain sentences about a swatch: what its colour stands for,
    or (every other sample) the mascot of a game. The mcq task asks for it after a long context, with
    lettered options and a one-letter answer, none of which this source uses."""
    rng = rng_for(cfg.seed, "pretrain", "facts")
    names = sorted(mcq.SWATCHES)
    drafts = []
    for k in range(n):
        colour = names[int(rng.integers(len(names)))]
        image = mcq.render_swatch(colour, rng)
        while pixel_hash(image) in exclude:
            image = mcq.render_swatch(colour, rng)
        if k % 2:
            game = mcq.GAMES[int(rng.integers(len(mcq.GAMES)))]
            prompt, answer = (f"Which animal is the mascot of the {game} game?",
                              f"The mascot of the {game} game is the {mcq.MASCOTS[game]}.")
        else:
            prompt, answer = ("Which animal does the color in the image stand for?",
                              f"The color {colour} stands for {mcq.CARD_CODE[colour]}.")
        drafts.append((image, f"pretrain/fact_{k:05d}.png", answer, prompt))
    return drafts


# (source, weight): reading gets the largest share because it is the hardest skill for the tiny vision
# tower, and the ocr task needs a base that has learned to see text.
SOURCES: tuple[tuple[Callable[[int, MinimixConfig, frozenset[str]], list[Draft]], int], ...] = (
    (_easy_vqa, 2), (_swatches, 1), (_texts, 8), (_scenes, 2), (_facts, 3), (_checks, 2))


def source_counts(total: int) -> list[int]:
    """How many of `total` samples each source gives: proportional to its weight, rounding down, and the
    remainder one each to the first sources."""
    weights = [w for _, w in SOURCES]
    counts = [total * w // sum(weights) for w in weights]
    for j in range(total - sum(counts)):
        counts[j] += 1
    return counts


def generate(cfg: MinimixConfig, exclude: frozenset[str]) -> list[Sample]:
    """cfg.pretrain_samples descriptions, spread over the sources by weight and interleaved."""
    per_source = [source(count, cfg, exclude)
                  for (source, _), count in zip(SOURCES, source_counts(cfg.pretrain_samples))]
    longest = max(len(s) for s in per_source)
    interleaved = [s[i] for i in range(longest) for s in per_source if i < len(s)]
    rng = rng_for(cfg.seed, "pretrain", "prompts")
    return [Sample(id=f"pretrain-{i:05d}", task="pretrain", image=image, image_name=name,
                   text=prompt if prompt is not None else _pick(rng, PROMPTS), answers=(description,))
            for i, (image, name, description, prompt) in enumerate(interleaved)]
