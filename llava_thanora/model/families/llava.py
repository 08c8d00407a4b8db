"""LLaVA-1.5 (`model_type` "llava"): CLIP tower -> 2-layer MLP projector -> Llama/Vicuna, a fixed number of image
tokens per image (576 at 336 px)."""

from __future__ import annotations

from .base import Family


class LlavaFamily(Family):
    name = "llava"
    model_types = ("llava",)
    model_class = "LlavaForConditionalGeneration"
    image_token = "<image>"
    vision_prefixes = ("vision_tower",)
    projector_prefixes = ("multi_modal_projector",)
    default_aspect_ratio = "pad"  # LLaVA-1.5's training setting

    def save_merged(self, model, processor, directory):
        """llava-hf's hub layout and tokenizer files, which transformers 4.x reads too (`model/export.py`)."""
        from ..export import save_portable

        return save_portable(model, processor, directory)
