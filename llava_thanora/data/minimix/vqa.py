"""Task `vqa`: easy-VQA (Victor Zhou, MIT), real 64x64 shape images with one-word shape/colour answers.

The package's own train split feeds training and its test split feeds evaluation, so no image is shared.
"""

from __future__ import annotations

from dataclasses import dataclass

import easy_vqa
from PIL import Image

from .writer import MinimixConfig, Sample, pixel_hash, rng_for

# The official VQA metric credits min(1, matches / 3) averaged over annotator subsets; with one reference
# the best possible score would be 1/3, so each answer is repeated as if ten annotators agreed.
VQA_REFERENCES = 10


@dataclass(frozen=True)
class EasyVqaSplit:
    """One split of the easy-VQA package, as parallel lists."""

    texts: list[str]
    """Question texts (lower case, as shipped)."""
    answers: list[str]
    """One-word answers."""
    image_ids: list[int]
    """Image id of each question."""
    image_paths: dict[int, str]
    """Image id -> PNG path inside the installed package."""


def load_split(split: str) -> EasyVqaSplit:
    """Read the "train" or "test" split of easy-VQA."""
    if split == "train":
        texts, answers, ids = easy_vqa.get_train_questions()
        return EasyVqaSplit(texts, answers, ids, easy_vqa.get_train_image_paths())
    if split == "test":
        texts, answers, ids = easy_vqa.get_test_questions()
        return EasyVqaSplit(texts, answers, ids, easy_vqa.get_test_image_paths())
    raise ValueError(f"unknown easy-VQA split {split!r}")


def load_image(path: str) -> Image.Image:
    """An easy-VQA PNG as RGB (the files are already 64x64)."""
    with Image.open(path) as im:
        return im.convert("RGB")


def generate(split: str, n: int, cfg: MinimixConfig, exclude: frozenset[str]) -> list[Sample]:
    """`n` questions of `split`, one per image while distinct images last, skipping images in `exclude`."""
    data = load_split(split)
    rng = rng_for(cfg.seed, "vqa", split)
    order = rng.permutation(len(data.texts)).tolist()
    # Stable partition: the first question met for each image, then the others, so small sets cover
    # as many different images as possible.
    seen: set[int] = set()
    first, rest = [], []
    for q in order:
        (rest if data.image_ids[q] in seen else first).append(q)
        seen.add(data.image_ids[q])

    images: dict[int, Image.Image | None] = {}
    samples: list[Sample] = []
    for q in first + rest:
        if len(samples) == n:
            break
        image_id = data.image_ids[q]
        if image_id not in images:
            image = load_image(data.image_paths[image_id])
            images[image_id] = None if pixel_hash(image) in exclude else image
        if images[image_id] is None:
            continue
        text = data.texts[q]
        samples.append(Sample(
            id=f"vqa-{split}-{len(samples):05d}",
            task="vqa",
            image=images[image_id],
            image_name=f"vqa/{split}/easyvqa_{image_id:04d}.png",
            text=text[:1].upper() + text[1:],
            answers=(data.answers[q],) * VQA_REFERENCES,
        ))
    if len(samples) < n:
        raise ValueError(f"easy-VQA {split} split has only {len(samples)} usable questions, {n} requested")
    return samples


def image_attributes(data: EasyVqaSplit) -> dict[int, tuple[str, str]]:
    """Image id -> (colour, shape) for every image whose questions pin down both.

    Each easy-VQA image holds a single shape. "what ..." questions name the attribute in their answer;
    yes/no questions name it in the text, negated by "not" or "is no".
    """
    answers = set(easy_vqa.get_answers())
    shapes = {"circle", "rectangle", "triangle"}
    colours = answers - shapes - {"yes", "no"}
    found: dict[int, dict[str, set[str]]] = {}
    for text, answer, image_id in zip(data.texts, data.answers, data.image_ids):
        words = text.rstrip("?").split()
        if answer in ("yes", "no"):
            negated = "not" in words or words[:2] == ["is", "no"]
            named = words if (answer == "yes") != negated else []
        else:
            named = [answer]
        slots = found.setdefault(image_id, {"colour": set(), "shape": set()})
        slots["colour"].update(w for w in named if w in colours)
        slots["shape"].update(w for w in named if w in shapes)
    return {
        image_id: (next(iter(s["colour"])), next(iter(s["shape"])))
        for image_id, s in sorted(found.items())
        if len(s["colour"]) == 1 and len(s["shape"]) == 1
    }
