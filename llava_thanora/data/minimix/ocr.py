"""Task `ocr`: one lower-case letter or digit rendered with PIL on a cluttered, noisy background.

Complex image, simple question: fonts, sizes, positions, colours, rotations, gradients, clutter and
noise all vary, while the question is always a short "what is written?".

Why one character: the tiny vision tower is a ViT trained from scratch, and whole words are out of its
reach in the demo's budget. Measured with a classifier on the tower alone (1,000 steps at batch 64, 300
validation images): 40 words in three casings 9% (2,000 or 16,000 training images), the same words in
lower case on cleaner images 15%, one of 32 capital characters 61% and still rising. v1 (104 words and
4-digit numbers) and v2's 40 words both left the fine-tuned models at 0.

Why lower case: capitals share their tokens (" A" ... " D") with the mcq letters. With capital characters a
LoRA on the 4-task mixture spread its mcq answers over all 32 characters (about 5% on each of A-D), while
the same LoRA on mcq alone reached 62% on validation.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .writer import IMAGE_SIZE, MinimixConfig, Sample, pixel_hash, rng_for

# Lower-case letters and digits, without "a" and "i" (English words of their own, frequent in the other
# tasks' text), "l" and "o" (drawn like 1 and 0 by many fonts), and 0/1.
GLYPHS = "bcdefghjkmnpqrstuvwxyz23456789"
# Difficulty knobs (BENCHMARKS.md, "minimix 2.1"): glyphs large enough for 8x8 patches, the rest as in 2.0.
FONT_SIZES = (28, 45)  # [low, high) in pixels
MAX_ANGLE = 10.0  # degrees either way
CLUTTER_ITEMS = (1, 4)  # [low, high) lines, rings and boxes
NOISE_STD = (2.0, 8.0)  # per-image Gaussian noise level, drawn uniformly
# Text colours by name, split by background so the text always contrasts with what lies behind it.
DARK_INKS = {"black": (0, 0, 0), "red": (200, 20, 20), "blue": (20, 40, 200), "green": (10, 120, 30),
             "purple": (110, 30, 140), "brown": (110, 60, 20)}
LIGHT_INKS = {"white": (255, 255, 255), "yellow": (250, 230, 40), "orange": (255, 150, 30),
              "cyan": (80, 230, 240), "pink": (255, 150, 200)}
QUESTIONS = ("What character is written in the image?", "What letter or digit is shown in the image?",
             "Read the character in this image.", "What is written in the picture?")
# Latin text families worth rendering with; symbol and maths fonts (cmsy10, STIX size variants) are not.
FONT_PREFIXES = ("DejaVuSans", "DejaVuSerif", "Liberation", "FreeSans", "FreeSerif", "FreeMono")
SYSTEM_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")


@dataclass(frozen=True)
class FontSpec:
    """A font the renderer may use."""

    name: str
    """File stem, or "Pillow-Aileron-Regular" for Pillow's embedded default font."""
    path: str | None
    """TrueType file; None for Pillow's embedded font (ImageFont.load_default)."""


def _font_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*.ttf")
                  if p.stem.startswith(FONT_PREFIXES) and "Display" not in p.stem)


def find_fonts(system_fonts: bool) -> tuple[FontSpec, ...]:
    """Fonts in a fixed order: Pillow's embedded Aileron, matplotlib's bundled DejaVu, then (optionally)
    fonts installed on the machine whose file name is not already listed. Missing sources are skipped."""
    specs = [FontSpec("Pillow-Aileron-Regular", None)]
    folders = []
    mpl = importlib.util.find_spec("matplotlib")  # located, not imported: importing it costs time
    if mpl is not None and mpl.origin:
        folders.append(Path(mpl.origin).parent / "mpl-data" / "fonts" / "ttf")
    if system_fonts:
        folders += [Path(d) for d in SYSTEM_FONT_DIRS]
    names = {s.name for s in specs}
    for folder in folders:
        for path in _font_files(folder):
            if path.stem in names:
                continue
            try:
                ImageFont.truetype(str(path), 12).getbbox("Ag0")
            except OSError:  # unreadable or broken font file: leave it out rather than fail the build
                continue
            specs.append(FontSpec(path.stem, str(path)))
            names.add(path.stem)
    return tuple(specs)


@dataclass
class FontBank:
    """Loaded fonts by (index, size); one bank per generation run, so nothing is cached globally."""

    specs: tuple[FontSpec, ...]
    """Fonts to draw from."""
    loaded: dict[tuple[int, int], ImageFont.FreeTypeFont] = field(default_factory=dict)
    """Cache of fonts already opened."""

    def get(self, index: int, size: int) -> ImageFont.FreeTypeFont:
        """The font `specs[index]` at `size` pixels."""
        key = (index, size)
        if key not in self.loaded:
            spec = self.specs[index]
            self.loaded[key] = (ImageFont.load_default(size=size) if spec.path is None
                                else ImageFont.truetype(spec.path, size))
        return self.loaded[key]


def random_text(rng: np.random.Generator) -> str:
    """One character of GLYPHS, uniformly."""
    return GLYPHS[int(rng.integers(len(GLYPHS)))]


def _background(rng: np.random.Generator, light: bool) -> np.ndarray:
    """A two-colour linear gradient, horizontal or vertical, as float HxWx3."""
    low, high = (150, 256) if light else (0, 100)
    a, b = rng.integers(low, high, size=(2, 3))
    t = np.linspace(0.0, 1.0, IMAGE_SIZE)[:, None]
    ramp = np.repeat((a * (1 - t) + b * t)[None], IMAGE_SIZE, axis=0)  # varies along x
    return ramp if rng.random() < 0.5 else ramp.transpose(1, 0, 2)


def _clutter(draw: ImageDraw.ImageDraw, rng: np.random.Generator, light: bool) -> None:
    """Lines, rings and boxes in background-like colours: distracting but weaker than the text."""
    low, high = (110, 230) if light else (40, 150)
    for _ in range(int(rng.integers(*CLUTTER_ITEMS))):
        colour = tuple(int(c) for c in rng.integers(low, high, size=3))
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, IMAGE_SIZE, size=4))
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        kind = int(rng.integers(3))
        if kind == 0:
            draw.line((x0, y0, x1, y1), fill=colour, width=int(rng.integers(1, 3)))
        elif kind == 1:
            draw.ellipse(box, outline=colour)
        else:
            draw.rectangle(box, outline=colour)


def _text_mask(text: str, font: ImageFont.FreeTypeFont, angle: float) -> Image.Image:
    """White-on-black mask of `text`, cropped to its ink and rotated by `angle` degrees."""
    left, top, right, bottom = font.getbbox(text)
    mask = Image.new("L", (right - left + 4, bottom - top + 4), 0)
    ImageDraw.Draw(mask).text((2 - left, 2 - top), text, font=font, fill=255)
    return mask.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True) if angle else mask


@dataclass(frozen=True)
class Rendered:
    """A rendered text image and how it was drawn (recorded so the answer can be checked on the pixels)."""

    image: Image.Image
    """The 64x64 RGB result, noise included."""
    ink: str
    """Name of the text colour (a key of DARK_INKS or LIGHT_INKS)."""
    font: str
    """FontSpec.name of the font."""
    size: int
    """Font size in pixels."""
    angle: float
    """Rotation in degrees, counter-clockwise."""
    box: tuple[int, int, int, int]
    """(left, top, right, bottom) of the pasted text mask."""


def render_text_image(text: str, rng: np.random.Generator, fonts: FontBank) -> Rendered:
    """Render `text` at a random place, font, size, colour and angle."""
    light = rng.random() < 0.7  # light background with dark ink, or the reverse
    inks = DARK_INKS if light else LIGHT_INKS
    ink_name = sorted(inks)[int(rng.integers(len(inks)))]
    image = Image.fromarray(_background(rng, light).astype(np.uint8), "RGB")
    _clutter(ImageDraw.Draw(image), rng, light)

    font_index = int(rng.integers(len(fonts.specs)))
    size = int(rng.integers(*FONT_SIZES))
    angle = float(rng.uniform(-MAX_ANGLE, MAX_ANGLE))
    mask = _text_mask(text, fonts.get(font_index, size), angle)
    # Shrink until the (rotated) text fits, then straighten it as a last resort.
    while max(mask.size) > IMAGE_SIZE - 2:
        if size > 8:
            size -= 1
        elif angle:
            angle = 0.0
        else:
            raise ValueError(f"text {text!r} does not fit in {IMAGE_SIZE} px with font "
                             f"{fonts.specs[font_index].name}")
        mask = _text_mask(text, fonts.get(font_index, size), angle)
    x = int(rng.integers(0, IMAGE_SIZE - mask.width + 1))
    y = int(rng.integers(0, IMAGE_SIZE - mask.height + 1))
    image.paste(inks[ink_name], (x, y, x + mask.width, y + mask.height), mask)

    noisy = np.asarray(image, dtype=np.float64) + rng.normal(0.0, rng.uniform(*NOISE_STD), (IMAGE_SIZE,) * 2 + (3,))
    return Rendered(Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), "RGB"), ink_name,
                    fonts.specs[font_index].name, size, angle, (x, y, x + mask.width, y + mask.height))


def generate(split: str, n: int, cfg: MinimixConfig, exclude: frozenset[str]) -> list[Sample]:
    """`n` rendered texts for `split`; an image whose pixels appear in `exclude` is drawn again."""
    rng = rng_for(cfg.seed, "ocr", split)
    fonts = FontBank(find_fonts(cfg.system_fonts))
    samples = []
    for i in range(n):
        text = random_text(rng)
        rendered = render_text_image(text, rng, fonts)
        while pixel_hash(rendered.image) in exclude:
            rendered = render_text_image(text, rng, fonts)
        samples.append(Sample(
            id=f"ocr-{split}-{i:05d}",
            task="ocr",
            image=rendered.image,
            image_name=f"ocr/{split}/{i:05d}.png",
            text=QUESTIONS[int(rng.integers(len(QUESTIONS)))],
            answers=(text,),
            annotation_extra={"font": rendered.font, "size": rendered.size, "angle": round(rendered.angle, 4),
                              "box": list(rendered.box), "ink": rendered.ink},
        ))
    return samples
