"""Qwen2.5-VL (`model_type` "qwen2_5_vl"): Qwen2-VL's dynamic resolution with a windowed-attention tower."""

from __future__ import annotations

from .qwen2_vl import Qwen2VLFamily


class Qwen2_5_VLFamily(Qwen2VLFamily):
    name = "qwen2_5_vl"
    model_types = ("qwen2_5_vl",)
    model_class = "Qwen2_5_VLForConditionalGeneration"

    def load_processor(self, path: str):
        from .processors import Qwen2_5_VLProcessor

        return Qwen2_5_VLProcessor.from_pretrained(path)
