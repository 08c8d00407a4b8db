"""Pixels as LLaVA-1.5 computes them: `load_image` + the processor `load_processor` loads, against a from-scratch
PIL + numpy implementation of LLaVA's `expand2square` (llava/mm_utils.py) followed by the CLIPImageProcessor of
LLaVA's transformers (shortest edge to 336 with PIL bicubic, long edge int(336 * long / short), centre crop
336 with the offset floor((size - 336) / 2), x / 255 and (x - mean) / std in float32), equal pixel for pixel; and
the PIL backend is chosen even where torchvision is installed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from llava_thanora.data.images import load_image, load_image_processor, load_processor

# llava-hf/llava-1.5-7b-hf's preprocessor_config.json (the values of openai/clip-vit-large-patch14-336).
MEAN, STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
CONFIG = {"crop_size": {"height": 336, "width": 336}, "do_center_crop": True, "do_convert_rgb": True,
          "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": MEAN, "image_std": STD,
          "image_processor_type": "CLIPImageProcessor", "processor_class": "LlavaProcessor", "resample": 3,
          "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 336}}


def reference_pixels(path, aspect: str, size: int = 336) -> np.ndarray:
    """LLaVA-1.5's pixels of one image file, written from its definition with PIL and numpy only."""
    image = Image.open(path).convert("RGB")
    if aspect == "pad":  # expand2square(image, tuple(int(x * 255) for x in image_mean))
        w, h = image.size
        colour = tuple(int(x * 255) for x in MEAN)
        if w != h:
            canvas = Image.new("RGB", (max(w, h),) * 2, colour)
            canvas.paste(image, ((max(w, h) - w) // 2, (max(w, h) - h) // 2))
            image = canvas
    w, h = image.size
    if w <= h:
        new_w, new_h = size, int(size * h / w)
    else:
        new_w, new_h = int(size * w / h), size
    array = np.asarray(image.resize((new_w, new_h), Image.BICUBIC))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    array = array[top: top + size, left: left + size]
    scaled = (array * (1 / 255)).astype(np.float32)
    normalized = (scaled - np.array(MEAN, dtype=np.float32)) / np.array(STD, dtype=np.float32)
    return normalized.transpose(2, 0, 1)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Pictures of several shapes and modes with structure (gradients and noise), as files."""
    root = tmp_path_factory.mktemp("pixels")
    rng = np.random.default_rng(0)
    paths = []
    for i, (w, h, mode) in enumerate([(640, 480, "RGB"), (97, 233, "RGB"), (300, 300, "RGB"), (51, 20, "L"),
                                      (120, 77, "RGBA"), (64, 90, "P")]):
        yy, xx = np.mgrid[0:h, 0:w]
        rgb = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) % 256], -1)
        rgb = np.clip(rgb + rng.integers(-40, 40, rgb.shape), 0, 255).astype(np.uint8)
        picture = Image.fromarray(rgb, "RGB")
        picture = picture.convert(mode) if mode != "P" else picture.quantize(32)
        paths.append(root / f"{i}.png")
        picture.save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def processor_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("llava15_processor")
    (root / "preprocessor_config.json").write_text(json.dumps(CONFIG))
    return str(root)


@pytest.mark.parametrize("aspect", ["pad", "original"])
def test_pixels_equal_llava_pixel_for_pixel(images, processor_dir, aspect):
    processor = load_image_processor(processor_dir)
    for path in images:
        ours = processor(load_image(path, aspect, processor.image_mean), return_tensors="np")["pixel_values"][0]
        expected = reference_pixels(path, aspect)
        assert ours.shape == expected.shape == (3, 336, 336)
        assert np.array_equal(ours, expected), f"{path.name} ({aspect}): max |diff| {np.abs(ours - expected).max()}"


def test_pad_colour_is_llava_int_not_round(images):
    padded = load_image(images[0], "pad", MEAN)  # 640 x 480: bands of 80 rows above and below
    assert padded.size == (640, 640)
    assert padded.getpixel((0, 0)) == padded.getpixel((639, 639)) == (122, 116, 104)  # round() gave (123, 117, 104)


def test_pil_backend_is_chosen_even_with_torchvision(monkeypatch, processor_dir, tiny_model):
    """With torchvision installed transformers resolves a plain load to its torchvision backend; ours asks for
    PIL (torchvision is not installed here, so its availability is simulated and the resolution observed)."""
    import transformers.models.auto.image_processing_auto as auto

    resolved = []
    original = auto._resolve_backend
    monkeypatch.setattr(auto, "is_torchvision_available", lambda: True)
    monkeypatch.setattr(auto, "_resolve_backend", lambda *a: resolved.append(original(*a)) or resolved[-1])
    auto.AutoImageProcessor.from_pretrained(processor_dir)
    assert resolved == ["torchvision"]  # what AutoProcessor would use on a GPU machine
    resolved.clear()
    assert load_image_processor(processor_dir).backend == "pil" and resolved == ["pil"]
    resolved.clear()
    processor = load_processor(tiny_model)  # what training and eval.generate load
    assert processor.image_processor.backend == "pil" and resolved[-1] == "pil"
    assert processor.tokenizer.backend == "tokenizers"  # backend="pil" did not reach the tokenizer
