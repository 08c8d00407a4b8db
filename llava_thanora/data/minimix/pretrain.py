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
from sklearn.datasets import load_digits

from . import caption, mcq, ocr, vqa
from .writer import MinimixConfig, Sample, pixel_hash, rng_for

PROMPTS = ("Describe this image.", "What do you see in this picture?", "Give a short description of the image.",
           "Tell me what this image contains.")
Draft = tuple[Image.Image, str, str]  # (image, image name, description)


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
                       f"A single {colour} {shape} on a plain background."))
    return drafts


def _digits(n: int, cfg: MinimixConfig, exclude: frozenset[str]) -> list[Draft]:
    """Handwritten digits from the mcq training pool, named in words."""
    rng = rng_for(cfg.seed, "pretrain", "mcq")
    digits = load_digits()
    pool = mcq.digit_pools(cfg.seed, len(digits.target))["train"]
    images = {i: mcq.render_digit(digits.images[i]) for i in pool}
    usable = [pool[i] for i in rng.permutation(len(pool)) if pixel_hash(images[pool[i]]) not in exclude]
    if n and not usable:
        raise ValueError("no training digit is left after excluding held-out images")
    drafts = []
    for k in range(n):
        index = usable[k % len(usable)]
        word = mcq.DIGIT_WORDS[int(digits.target[index])]
        drafts.append((images[index], f"pretrain/digit_{index:04d}.png",
                       f"A handwritten digit {word} in dark ink on white paper."))
    return drafts


def _texts(n: int, cfg: MinimixConfig, exclude: frozenset[str]) -> list[Draft]:
    """Freshly rendered words and numbers: the text itself, then its ink colour."""
    rng = rng_for(cfg.seed, "pretrain", "ocr")
    fonts = ocr.FontBank(ocr.find_fonts(cfg.system_fonts))
    drafts = []
    for k in range(n):
        content, _ = ocr.random_text(rng)
        rendered = ocr.render_text_image(content, rng, fonts)
        while pixel_hash(rendered.image) in exclude:
            rendered = ocr.render_text_image(content, rng, fonts)
        drafts.append((rendered.image, f"pretrain/text_{k:05d}.png",
                       f"The text '{content}' written in {rendered.ink}."))
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
                       f"This drawing contains {caption.join_phrases(parts)}."))
    return drafts


# (source, weight): reading gets the largest share because it is the hardest skill for the tiny vision
# tower, and the ocr task needs a base that has learned to see text.
SOURCES: tuple[tuple[Callable[[int, MinimixConfig, frozenset[str]], list[Draft]], int], ...] = (
    (_easy_vqa, 1), (_digits, 1), (_texts, 2), (_scenes, 1))


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
                   text=_pick(rng, PROMPTS), answers=(description,))
            for i, (image, name, description) in enumerate(interleaved)]
