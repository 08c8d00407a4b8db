"""pretrain.json: a generic "describe the image" corpus for a base model that sees and talks.

Same four image sources as the tasks, but only from their training side (never a test image), and in a
different format: an open instruction answered by a plain sentence, never a one-word answer, a letter or
an option list, so fine-tuning on minimix still has something to teach.
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
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
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
        raise ValueError("no easy-VQA train image is left after excluding test images")
    drafts = []
    for k in range(n):
        image_id = usable[k % len(usable)]
        colour, shape = attributes[image_id]
        text = _pick(rng, (f"A {colour} {shape} on a pale background.",
                           f"The picture shows a single {colour} {shape}.",
                           f"There is one {shape} in this image, and it is {colour}."))
        drafts.append((images[image_id], f"pretrain/easyvqa_{image_id:04d}.png", text))
    return drafts


def _digits(n: int, cfg: MinimixConfig, exclude: frozenset[str]) -> list[Draft]:
    """Handwritten digits from the mcq training pool, named in words."""
    rng = rng_for(cfg.seed, "pretrain", "mcq")
    digits = load_digits()
    pool = mcq.digit_pools(cfg.seed, len(digits.target))["train"]
    images = {i: mcq.render_digit(digits.images[i]) for i in pool}
    usable = [pool[i] for i in rng.permutation(len(pool)) if pixel_hash(images[pool[i]]) not in exclude]
    if n and not usable:
        raise ValueError("no training digit is left after excluding test images")
    drafts = []
    for k in range(n):
        index = usable[k % len(usable)]
        word = DIGIT_WORDS[int(digits.target[index])]
        text = _pick(rng, (f"A handwritten digit {word}.",
                           f"The image shows a handwritten {word} in dark ink on white paper.",
                           f"This is the number {word}, written by hand."))
        drafts.append((images[index], f"pretrain/digit_{index:04d}.png", text))
    return drafts


def _texts(n: int, cfg: MinimixConfig, exclude: frozenset[str]) -> list[Draft]:
    """Freshly rendered words and numbers, described with their ink colour."""
    rng = rng_for(cfg.seed, "pretrain", "ocr")
    fonts = ocr.FontBank(ocr.find_fonts(cfg.system_fonts))
    drafts = []
    for k in range(n):
        content, is_number = ocr.random_text(rng)
        image, ink = ocr.render_text_image(content, rng, fonts)
        while pixel_hash(image) in exclude:
            image, ink = ocr.render_text_image(content, rng, fonts)
        kind = "number" if is_number else "word"
        text = _pick(rng, (f"The image shows the {kind} '{content}' written in {ink}.",
                           f"The {kind} '{content}' is printed in {ink} over a noisy, cluttered background."))
        drafts.append((image, f"pretrain/text_{k:05d}.png", text))
    return drafts


def _scenes(n: int, cfg: MinimixConfig, exclude: frozenset[str]) -> list[Draft]:
    """Fresh shape scenes, described by size and colour rather than by position."""
    rng = rng_for(cfg.seed, "pretrain", "caption")
    drafts = []
    for k in range(n):
        scene = caption.random_scene(rng)
        image = caption.draw_scene(scene, rng)
        while pixel_hash(image) in exclude:
            scene = caption.random_scene(rng)
            image = caption.draw_scene(scene, rng)
        parts = [f"a {'small' if s.radius < 6.5 else 'large'} {s.noun}" for s in scene]
        text = f"This drawing contains {caption.join_phrases(parts)}."
        drafts.append((image, f"pretrain/scene_{k:05d}.png", text))
    return drafts


SOURCES: tuple[Callable[[int, MinimixConfig, frozenset[str]], list[Draft]], ...] = (
    _easy_vqa, _digits, _texts, _scenes)


def generate(cfg: MinimixConfig, exclude: frozenset[str]) -> list[Sample]:
    """cfg.pretrain_samples descriptions, spread evenly over the sources and interleaved."""
    k = cfg.pretrain_samples
    per_source = [source(k // len(SOURCES) + (j < k % len(SOURCES)), cfg, exclude)
                  for j, source in enumerate(SOURCES)]
    longest = max(len(s) for s in per_source)
    interleaved = [s[i] for i in range(longest) for s in per_source if i < len(s)]
    rng = rng_for(cfg.seed, "pretrain", "prompts")
    return [Sample(id=f"pretrain-{i:05d}", task="pretrain", image=image, image_name=name,
                   text=_pick(rng, PROMPTS), answers=(description,))
            for i, (image, name, description) in enumerate(interleaved)]
