"""Qwen2.5-VL (`model_type` "qwen2_5_vl"): Qwen2-VL's dynamic resolution with a windowed-attention tower."""

from __future__ import annotations

from .qwen2_vl import Qwen2VLFamily


class Qwen2_5_VLFamily(Qwen2VLFamily):
    name = "qwen2_5_vl"
    model_types = ("qwen2_5_vl",)
    model_class = "Qwen2_5_VLForConditionalGeneration"

    processor_class = "Qwen2_5_VLProcessor"

    def tiny_vision(self, cfg) -> dict:
        return dict(depth=cfg.vision_layers, hidden_size=cfg.vision_hidden_size, intermediate_size=2 * cfg.vision_hidden_size,
                    num_heads=cfg.num_attention_heads, out_hidden_size=cfg.hidden_size, patch_size=14,
                    spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                    fullatt_block_indexes=[cfg.vision_layers - 1])
