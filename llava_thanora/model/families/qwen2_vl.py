"""Qwen2-VL (`model_type` "qwen2_vl"): dynamic resolution. An image becomes (h/14) x (w/14) patches after a resize
that keeps its aspect ratio inside [min_pixels, max_pixels] (`--image_min_pixels`, `--image_max_pixels`), merged
2 x 2 into `<|image_pad|>` tokens, so the token count depends on the image size. The vision tower is
`model.visual`; its `merger` (the patch-merging MLP) is the projector."""

from __future__ import annotations

import torch

from .base import Family


class Qwen2VLFamily(Family):
    name = "qwen2_vl"
    model_types = ("qwen2_vl",)
    model_class = "Qwen2VLForConditionalGeneration"
    image_token = "<|image_pad|>"
    vision_prefixes = ("visual.",)
    projector_prefixes = ("visual.merger",)
    image_inputs_keys = ("pixel_values", "image_grid_thw")

    def is_vision(self, name: str) -> bool:
        return super().is_vision(name) and not self.is_projector(name)

    def token_inputs(self, input_ids: torch.Tensor, image_token_id: int | None) -> dict[str, torch.Tensor]:
        """`mm_token_type_ids` (1 at image tokens), which the model's multimodal RoPE needs; the processor would
        return it next to the ids it expands."""
        return {"mm_token_type_ids": (input_ids == image_token_id).to(torch.int32)}

    def load_processor(self, path: str):
        from .processors import Qwen2VLProcessor

        return Qwen2VLProcessor.from_pretrained(path)

    def blank_image_inputs(self, processor) -> dict[str, torch.Tensor]:
        """The smallest image the resize rule allows (one 2 x 2 merge of patches, or min_pixels)."""
        from PIL import Image

        ip = processor.image_processor
        side = ip.patch_size * ip.merge_size
        return self.process_images(processor, [Image.new("RGB", (side, side))])[0]
