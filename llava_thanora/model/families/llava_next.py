"""LLaVA-NeXT / llava-v1.6 (`model_type` "llava_next"): anyres. Each image is tiled at the best grid resolution
plus a base view; the features are unpadded to the image's aspect ratio and every row ends with the learned
`image_newline`, so the token count depends on the image size (transformers' processor computes it). The
projector and `image_newline` are what LLaVA-NeXT trains next to the LoRA."""

from __future__ import annotations

import torch

from .base import Family


def pad_patches(per_sample: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Images of a batch with different numbers of tiles: zero tiles appended up to the largest count (the model
    drops them again from `image_sizes`), other keys concatenated."""
    with_images = [inputs for inputs in per_sample if inputs]
    if not with_images:
        return {}
    most = max(inputs["pixel_values"].shape[1] for inputs in with_images)
    pixels = [torch.nn.functional.pad(x["pixel_values"], (0, 0, 0, 0, 0, 0, 0, most - x["pixel_values"].shape[1]))
              for x in with_images]
    out = {"pixel_values": torch.cat(pixels)}
    for key in sorted(set(with_images[0]) - {"pixel_values"}):
        out[key] = torch.cat([x[key] for x in with_images])
    return out


class LlavaNextFamily(Family):
    name = "llava_next"
    model_types = ("llava_next",)
    model_class = "LlavaNextForConditionalGeneration"
    image_token = "<image>"
    vision_prefixes = ("vision_tower",)
    projector_prefixes = ("multi_modal_projector", "image_newline")
    image_inputs_keys = ("pixel_values", "image_sizes")

    def collate_images(self, per_sample):
        return pad_patches(per_sample)

    def tiny(self, tokenizer, cfg):
        from transformers import CLIPVisionConfig, LlamaConfig, LlavaNextConfig, LlavaNextImageProcessorPil
        from transformers import LlavaNextProcessor

        from .tiny_parts import vision_kwargs, VICUNA_TEMPLATE, pinpoints, text_config

        side = cfg.image_size
        config = LlavaNextConfig(
            vision_config=CLIPVisionConfig(**vision_kwargs(cfg)),
            text_config=LlamaConfig(**text_config(tokenizer, cfg)), image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
            image_grid_pinpoints=pinpoints(side), vision_feature_layer=-2, vision_feature_select_strategy="default")
        image_processor = LlavaNextImageProcessorPil(size={"shortest_edge": side}, crop_size={"height": side, "width": side},
                                                     image_grid_pinpoints=pinpoints(side))
        processor = LlavaNextProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=cfg.patch_size,
                                       vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                       chat_template=VICUNA_TEMPLATE)
        return config, processor
