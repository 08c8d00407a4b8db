"""Task `vqa`: easy-VQA (Victor Zhou, MIT), real 64x64 shape images with one-word shape/colour answers.

The package's own train split feeds training; its test split feeds the test and validation sets (test from
the front of one seeded image order, validation from the back), so no image is shared between splits.

easy-VQA's questions are 74% yes/no, so always answering "yes" would score about 37. The questions are
therefore drawn in a fixed rotation of four kinds (what colour, what shape, yes/no whose answer is yes,
yes/no whose answer is no): a blind model that knows the rotation but not the image scores about 34
(`blind_floor` in the tests measures it on the built data).
"""

from __future__ import annotations

from dataclasses import dataclass

import easy_vqa
from PIL import Image

from .writer import MinimixConfig, Sample, pixel_hash, rng_for

# The official VQA metric credits min(1, matches / 3) averaged over annotator subsets; with one reference
# the best possible score would be 1/3, so each answer is repeated as if ten annotators agreed.
VQA_REFERENCES = 10
SHAPES = ("circle", "rectangle", "triangle")
KINDS = ("colour", "shape", "yes", "no")  # the rotation; yes/no kinds are named by their answer


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


def question_kind(answer: str) -> str:
    """Which of KINDS a question with this answer belongs to."""
    if answer in ("yes", "no"):
        return answer
    return "shape" if answer in SHAPES else "colour"


def _image_order(cfg: MinimixConfig, split: str) -> tuple[EasyVqaSplit, list[int]]:
    """The package split a minimix split reads, and the image ids it may use, in the order it uses them."""
    package_split = "train" if split == "train" else "test"
    data = load_split(package_split)
    ids = sorted(set(data.image_ids))
    order = [ids[i] for i in rng_for(cfg.seed, "vqa", "images", package_split).permutation(len(ids))]
    # test and val share the package's test images: test walks the order forward, val backward.
    return data, order[::-1] if split == "val" else order


def generate(split: str, n: int, cfg: MinimixConfig, exclude: frozenset[str]) -> list[Sample]:
    """`n` questions of `split`, one image each, kinds in the KINDS rotation; images in `exclude` are skipped."""
    data, order = _image_order(cfg, split)
    by_image: dict[int, dict[str, list[int]]] = {}
    for q, (answer, image_id) in enumerate(zip(data.answers, data.image_ids)):
        by_image.setdefault(image_id, {k: [] for k in KINDS})[question_kind(answer)].append(q)
    rng = rng_for(cfg.seed, "vqa", split)
    samples: list[Sample] = []
    images = iter(order)
    while len(samples) < n:
        kind = KINDS[len(samples) % len(KINDS)]
        # The next image that has a question of this kind (every image has colour and shape questions,
        # and most have both yes and no ones); images skipped here are not used by this split.
        for image_id in images:
            if by_image[image_id][kind]:
                break
        else:
            raise ValueError(f"easy-VQA has too few images for {n} {split} questions")
        image = load_image(data.image_paths[image_id])
        if pixel_hash(image) in exclude:
            continue
        candidates = by_image[image_id][kind]
        q = candidates[int(rng.integers(len(candidates)))]
        text = data.texts[q]
        samples.append(Sample(
            id=f"vqa-{split}-{len(samples):05d}",
            task="vqa",
            image=image,
            image_name=f"vqa/{split}/easyvqa_{image_id:04d}.png",
            text=text[:1].upper() + text[1:],
            answers=(data.answers[q],) * VQA_REFERENCES,
            annotation_extra={"kind": kind},
        ))
    return samples


def image_attributes(data: EasyVqaSplit) -> dict[int, tuple[str, str]]:
    """Image id -> (colour, shape) for every image whose questions pin down both.

    Each easy-VQA image holds a single shape. "what ..." questions name the attribute in their answer;
    yes/no questions name it in the text, negated by "not" or "is no".
    """
    answers = set(easy_vqa.get_answers())
    colours = answers - set(SHAPES) - {"yes", "no"}
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
        slots["shape"].update(w for w in named if w in SHAPES)
    return {
        image_id: (next(iter(s["colour"])), next(iter(s["shape"])))
        for image_id, s in sorted(found.items())
        if len(s["colour"]) == 1 and len(s["shape"]) == 1
    }
