"""Image-only processors for families whose transformers processor also requires a video processor.

transformers' LLaVA-OneVision and Qwen2-VL processors check every attribute they declare, video processor
included, and the video processor classes need torchvision. These subclasses declare only the image processor and
the tokenizer; everything else (the text expansion of each image placeholder, `replace_image_token`, saving and
loading) is transformers' own. They keep the original class names, so a saved `processor_config.json` names the
real class and loads anywhere transformers and torchvision are installed. Videos are not supported (an error).
"""

from __future__ import annotations

from transformers import LlavaOnevisionProcessor as _LlavaOnevisionProcessor
from transformers import Qwen2_5_VLProcessor as _Qwen2_5_VLProcessor
from transformers import Qwen2VLProcessor as _Qwen2VLProcessor


class _ImageOnly:
    @classmethod
    def get_attributes(cls):
        return ["image_processor", "tokenizer"]

    def __call__(self, *args, videos=None, **kwargs):
        if videos is not None:
            raise ValueError(f"{type(self).__name__} here handles images only; videos need transformers' full "
                             f"processor (pip install torchvision)")
        return super().__call__(*args, **kwargs)


class LlavaOnevisionProcessor(_ImageOnly, _LlavaOnevisionProcessor):
    """LLaVA-OneVision's processor for single and multiple images, without the video processor."""


class Qwen2VLProcessor(_ImageOnly, _Qwen2VLProcessor):
    """Qwen2-VL's processor for images, without the video processor."""


class Qwen2_5_VLProcessor(_ImageOnly, _Qwen2_5_VLProcessor):
    """Qwen2.5-VL's processor for images, without the video processor."""
