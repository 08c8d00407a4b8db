"""Qwen2-VL (`model_type` "qwen2_vl"): dynamic resolution. An image becomes (h/14) x (w/14) patches after a resize
that keeps its aspect ratio inside [min_pixels, max_pixels] (`--image_min_pixels`, `--image_max_pixels`), merged
2 x 2 into `<|image_pad|>` tokens, so the token count depends on the image size. The vision tower is
`model.visual`; its `merger` (the patch-merging MLP) is the projector."""

from __future__ import annotations

import torch

from .base import Family


def pixel_bounds(image_processor) -> tuple[int, int]:
    """(min_pixels, max_pixels) of a Qwen2-VL image processor (its size's shortest/longest edge are pixel counts)."""
    size = image_processor.size
    get = (lambda k: size.get(k)) if isinstance(size, dict) else (lambda k: getattr(size, k, None))
    return int(get("shortest_edge")), int(get("longest_edge"))


class Qwen2VLFamily(Family):
    name = "qwen2_vl"
    model_types = ("qwen2_vl",)
    model_class = "Qwen2VLForConditionalGeneration"
    image_token = "<|image_pad|>"
    vision_prefixes = ("visual.",)
    projector_prefixes = ("visual.merger",)
    image_inputs_keys = ("pixel_values", "image_grid_thw")
    processor_class = "Qwen2VLProcessor"
    """The image-only processor (`processors.py`) that loads this family's checkpoints."""

    def set_pixel_bounds(self, processor, min_pixels: int | None, max_pixels: int | None) -> None:
        low, high = pixel_bounds(processor.image_processor)
        low, high = min_pixels or low, max_pixels or high
        if low > high:
            raise ValueError(f"--image_min_pixels {low} exceeds --image_max_pixels {high}")
        processor.image_processor.size = {"shortest_edge": low, "longest_edge": high}

    def is_vision(self, name: str) -> bool:
        return super().is_vision(name) and not self.is_projector(name)

    def token_inputs(self, input_ids: torch.Tensor, image_token_id: int | None) -> dict[str, torch.Tensor]:
        """`mm_token_type_ids` (1 at image tokens), which the model's multimodal RoPE needs; the processor would
        return it next to the ids it expands."""
        return {"mm_token_type_ids": (input_ids == image_token_id).to(torch.int32)}

    tiny_special_tokens = ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                           "<|video_pad|>")

    def tiny_vision(self, cfg) -> dict:
        return dict(depth=cfg.vision_layers, embed_dim=cfg.vision_hidden_size, hidden_size=cfg.hidden_size,
                    num_heads=cfg.num_attention_heads, patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                    mlp_ratio=2)

    def tiny(self, tokenizer, cfg):
        import transformers
        from transformers import Qwen2VLImageProcessorPil

        from . import processors
        from .tiny_parts import chatml_template, text_config

        head = cfg.hidden_size // cfg.num_attention_heads  # M-RoPE splits the rotary half-dimension in three
        sections = [head // 2 - 2 * (head // 6), head // 6, head // 6]
        ids = tokenizer.convert_tokens_to_ids(["<|image_pad|>", "<|vision_start|>", "<|vision_end|>", "<|video_pad|>"])
        config_class = getattr(transformers, self.model_class.replace("ForConditionalGeneration", "Config"))
        config = config_class(
            text_config=text_config(tokenizer, cfg, rope_scaling={"type": "mrope", "mrope_section": sections}),
            vision_config=self.tiny_vision(cfg), image_token_id=ids[0], vision_start_token_id=ids[1],
            vision_end_token_id=ids[2], video_token_id=ids[3])
        # 28 x 28 pixels per merged token: small images stay a few dozen tokens
        image_processor = Qwen2VLImageProcessorPil(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 64)
        processor = getattr(processors, self.processor_class)(image_processor=image_processor, tokenizer=tokenizer,
                                    chat_template=chatml_template("<|vision_start|><|image_pad|><|vision_end|>"))
        return config, processor

    def load_processor(self, path: str):
        from ...data.images import load_image_processor
        from . import processors

        processor = getattr(processors, self.processor_class).from_pretrained(path)
        processor.image_processor = load_image_processor(path)
        return processor

    def nominal_image_tokens(self, processor) -> int:
        """The most tokens an image can take (a square at max_pixels): length estimates err long, never short."""
        from PIL import Image

        side = min(int(pixel_bounds(processor.image_processor)[1] ** 0.5), 2048)
        return self.process_images(processor, [Image.new("RGB", (side, side))])[1][0]

    def blank_image_inputs(self, processor) -> dict[str, torch.Tensor]:
        """The smallest image the resize rule allows (one 2 x 2 merge of patches, or min_pixels)."""
        from PIL import Image

        ip = processor.image_processor
        side = ip.patch_size * ip.merge_size
        return self.process_images(processor, [Image.new("RGB", (side, side))])[0]
