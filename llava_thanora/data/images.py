"""Image paths and pixels: safe resolution under the image folder, LLaVA's `pad` aspect ratio, and the image
processor LLaVA computes pixels with.

Pixels are LLaVA-1.5's: `load_image` pads to a square in `int(255 * mean)` (LLaVA's `expand2square` colour,
(122, 116, 104) for CLIP), and `load_image_processor` loads the checkpoint's image processor with the PIL backend
(bicubic PIL resize, centre crop, rescale, CLIP normalisation: the CLIPImageProcessor LLaVA used). Left to
itself, transformers picks its torchvision backend whenever torchvision is installed, which resizes with
torchvision's own kernels and gives other pixels; torchvision is never needed here.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError


class ImageError(ValueError):
    """An image that is missing, unreadable or outside the image folder (the caller adds file/line/id)."""


def resolve_image(image_folder: str | Path | None, relative: str) -> Path:
    """`relative` joined to `image_folder`, refusing absolute paths and anything that escapes the folder."""
    if image_folder is None:
        raise ImageError(f"sample has image {relative!r} but no --image_folder was given")
    if not isinstance(relative, str) or not relative:
        raise ImageError(f"image path must be a non-empty string, got {relative!r}")
    if Path(relative).is_absolute():
        raise ImageError(f"image path {relative!r} is absolute; paths must be relative to --image_folder")
    root = Path(image_folder).resolve()
    path = (root / relative).resolve()  # resolves '..' and symlinks, so both escapes are caught
    if not path.is_relative_to(root):
        raise ImageError(f"image path {relative!r} resolves to {path}, outside --image_folder {root}")
    if not path.is_file():
        raise ImageError(f"image {relative!r} not found (looked for {path})")
    return path


def check_image(path: Path) -> None:
    """Fail now on a file PIL cannot decode, instead of in the middle of training."""
    try:
        with Image.open(path) as img:
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ImageError(f"image {path} is unreadable: {e}") from e


def expand_to_square(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Pad the short side so the whole image survives the processor's centre crop (LLaVA's `pad`)."""
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    out = Image.new(img.mode, (side, side), background)
    out.paste(img, ((side - w) // 2, (side - h) // 2))
    return out


def load_image(path: Path, aspect_ratio: str, image_mean: list[float] | None) -> Image.Image:
    """Open as RGB; with `pad`, pad to a square in the processor's mean colour (what LLaVA-1.5 trains with)."""
    try:
        img = Image.open(path).convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise ImageError(f"image {path} is unreadable: {e}") from e
    if aspect_ratio == "pad":
        mean = image_mean or [0.5, 0.5, 0.5]
        img = expand_to_square(img, tuple(int(255 * m) for m in mean))  # int(), not round(): LLaVA's colour
    elif aspect_ratio not in ("original", "square"):  # square: the processor's resize + centre crop only
        raise ValueError(f"--image_aspect_ratio must be 'pad', 'square' or 'original', got {aspect_ratio!r}")
    return img


def load_image_processor(source: str):
    """The image processor of checkpoint `source` with transformers' PIL backend (see the module docstring).

    Only the image processor gets `backend="pil"`: passed to AutoProcessor it would reach the tokenizer too.
    """
    from transformers import AutoImageProcessor

    return AutoImageProcessor.from_pretrained(source, backend="pil")


def load_processor(source: str):
    """AutoProcessor of `source` (never remote code) with its image processor on the PIL backend."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(source)
    processor.image_processor = load_image_processor(source)
    return processor
