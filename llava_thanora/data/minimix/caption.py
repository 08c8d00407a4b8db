"""Task `caption`: 2-4 coloured shapes on a 3x3 layout, each scene with five reference captions.

The references come from five templates with varied wording, phrase variants and shape order, so CIDEr has
real consensus to measure against rather than one fixed sentence. The first reference, the training
target, always uses the first template with the shapes in reading order: a tiny model learns one
consistent pattern much faster than a random one of five (see pretrain.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .writer import IMAGE_SIZE, MinimixConfig, Sample, pixel_hash, rng_for

COLOURS = {"red": (220, 30, 30), "green": (30, 160, 60), "blue": (30, 70, 220), "yellow": (235, 200, 20),
           "orange": (250, 130, 20), "purple": (140, 50, 170), "black": (20, 20, 20), "gray": (128, 128, 128)}
KINDS = ("circle", "square", "triangle", "star", "diamond", "cross")
# Grid cell (column, row) -> ways to say where it is.
POSITIONS = {
    (0, 0): ("in the top left corner", "at the top left"), (1, 0): ("at the top", "in the upper middle"),
    (2, 0): ("in the top right corner", "at the top right"), (0, 1): ("on the left", "at the left side"),
    (1, 1): ("in the center", "in the middle"), (2, 1): ("on the right", "at the right side"),
    (0, 2): ("in the bottom left corner", "at the bottom left"), (1, 2): ("at the bottom", "in the lower middle"),
    (2, 2): ("in the bottom right corner", "at the bottom right"),
}
COUNT_WORDS = {2: "two", 3: "three", 4: "four"}
CAPTION_QUESTION = "What is shown in the image?"
LARGE_RADIUS = 6.5  # shapes at least this large (in output pixels) are "large" in the pretraining corpus
SUPERSAMPLE = 4  # draw at 4x and downsample, for smooth edges without a drawing library


@dataclass(frozen=True)
class Shape:
    """One shape of a scene."""

    colour: str
    """Key of COLOURS."""
    kind: str
    """One of KINDS."""
    cell: tuple[int, int]
    """(column, row) of the 3x3 layout."""
    radius: float
    """Radius in output pixels (5-8)."""

    @property
    def noun(self) -> str:
        """E.g. "red circle"."""
        return f"{self.colour} {self.kind}"


def random_scene(rng: np.random.Generator) -> tuple[Shape, ...]:
    """2-4 shapes with distinct (colour, kind) pairs in distinct cells."""
    n = int(rng.integers(2, 5))
    cells = list(POSITIONS)
    chosen_cells = [cells[i] for i in rng.choice(len(cells), size=n, replace=False)]
    pairs = [(c, k) for c in COLOURS for k in KINDS]
    chosen_pairs = [pairs[i] for i in rng.choice(len(pairs), size=n, replace=False)]
    return tuple(Shape(c, k, cell, float(rng.uniform(5.0, 8.0))) for (c, k), cell in zip(chosen_pairs, chosen_cells))


def _outline(kind: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Polygon vertices of a non-circle shape centred at (cx, cy)."""
    def ring(count: int, radii: tuple[float, ...], start: float) -> list[tuple[float, float]]:
        return [(cx + radii[i % len(radii)] * math.cos(start + 2 * math.pi * i / count),
                 cy + radii[i % len(radii)] * math.sin(start + 2 * math.pi * i / count)) for i in range(count)]
    up = -math.pi / 2
    if kind == "square":
        return ring(4, (r * 1.2,), math.pi / 4)
    if kind == "triangle":
        return ring(3, (r * 1.15,), up)
    if kind == "star":
        return ring(10, (r * 1.2, r * 0.5), up)
    if kind == "diamond":
        return ring(4, (r * 1.15,), up)
    if kind == "cross":
        a, b = r, r * 0.35
        return [(cx - b, cy - a), (cx + b, cy - a), (cx + b, cy - b), (cx + a, cy - b), (cx + a, cy + b),
                (cx + b, cy + b), (cx + b, cy + a), (cx - b, cy + a), (cx - b, cy + b), (cx - a, cy + b),
                (cx - a, cy - b), (cx - b, cy - b)]
    raise ValueError(f"unknown shape kind {kind!r}")


def reading_order(scene: tuple[Shape, ...]) -> list[Shape]:
    """The shapes row by row, left to right."""
    return sorted(scene, key=lambda s: (s.cell[1], s.cell[0]))


def draw_scene(scene: tuple[Shape, ...], rng: np.random.Generator) -> Image.Image:
    """Render `scene` on a near-white background, each shape jittered inside its cell."""
    return draw_scene_with_centres(scene, rng)[0]


def draw_scene_with_centres(scene: tuple[Shape, ...],
                            rng: np.random.Generator) -> tuple[Image.Image, list[tuple[float, float]]]:
    """`draw_scene`, also returning each shape's centre in output pixels (for checking the image)."""
    big = IMAGE_SIZE * SUPERSAMPLE
    tint = tuple(int(v) for v in rng.integers(235, 256, size=3))
    image = Image.new("RGB", (big, big), tint)
    draw = ImageDraw.Draw(image)
    cell = IMAGE_SIZE / 3
    centres = []
    for s in scene:
        slack = max(0.0, cell / 2 - s.radius * 1.2 - 0.5)  # keep the shape inside its own cell
        cx = (s.cell[0] + 0.5) * cell + float(rng.uniform(-slack, slack))
        cy = (s.cell[1] + 0.5) * cell + float(rng.uniform(-slack, slack))
        centres.append((cx, cy))
        cx, cy, r = cx * SUPERSAMPLE, cy * SUPERSAMPLE, s.radius * SUPERSAMPLE
        if s.kind == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=COLOURS[s.colour])
        else:
            draw.polygon(_outline(s.kind, cx, cy, r), fill=COLOURS[s.colour])
    return image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX), centres


def join_phrases(parts: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _cap(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def captions(scene: tuple[Shape, ...], rng: np.random.Generator) -> tuple[str, ...]:
    """Five reference captions, one per template: first the canonical one (first template, reading order,
    first phrase variants), then the other four in random order, each with its own shape order."""
    def order() -> list[Shape]:
        return [scene[i] for i in rng.permutation(len(scene))]

    def where(s: Shape) -> str:
        variants = POSITIONS[s.cell]
        return variants[int(rng.integers(len(variants)))]

    count = COUNT_WORDS[len(scene)]
    first, *others = order()
    listed = join_phrases([f"a {s.noun}" for s in order()])
    # "Two shapes: a ..." rather than "A ...": the training answer must not start with the token " A", which is
    # also an mcq letter and an ocr character; 1,000 captions opening with it taught a LoRA to answer "A".
    canonical = _cap(f"{count} shapes: "
                     + join_phrases([f"a {s.noun} {POSITIONS[s.cell][0]}" for s in reading_order(scene)])) + "."
    refs = [
        _cap(f"{where(first)} there is a {first.noun}, ")
        + join_phrases([f"{where(s)} a {s.noun}" for s in others]) + ".",
        _cap(f"{count} shapes on a white background: {join_phrases([f'a {s.noun}' for s in order()])}."),
        f"A picture of {listed}, with the {first.noun} {where(first)}.",
        f"This image shows {count} colored shapes; "
        + join_phrases([f"the {s.noun} is {where(s)}" for s in order()]) + ".",
    ]
    return (canonical, *(refs[i] for i in rng.permutation(len(refs))))


def generate(split: str, n: int, cfg: MinimixConfig, exclude: frozenset[str]) -> list[Sample]:
    """`n` scenes for `split` with five captions each; the first caption is the training target."""
    rng = rng_for(cfg.seed, "caption", split)
    samples = []
    for i in range(n):
        scene = random_scene(rng)
        image, centres = draw_scene_with_centres(scene, rng)
        while pixel_hash(image) in exclude:
            scene = random_scene(rng)
            image, centres = draw_scene_with_centres(scene, rng)
        samples.append(Sample(
            id=f"caption-{split}-{i:05d}",
            task="caption",
            image=image,
            image_name=f"caption/{split}/{i:05d}.png",
            text=CAPTION_QUESTION,
            answers=captions(scene, rng),
            annotation_extra={"shapes": [{"colour": s.colour, "kind": s.kind, "cell": list(s.cell),
                                          "centre": [round(x, 2), round(y, 2)], "radius": round(s.radius, 2)}
                                         for s, (x, y) in zip(scene, centres)]},
        ))
    return samples
