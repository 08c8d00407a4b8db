"""Text-only causal language models (Llama, Qwen2/2.5, Mistral, ...): `AutoModelForCausalLM`, the checkpoint's
chat template, text-only data. There is no vision tower and no projector: samples with images and projector flags
are errors."""

from __future__ import annotations

from .base import Family


class TextProcessor:
    """What the rest of the code asks of a processor, for a tokenizer alone."""

    image_processor = None

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.chat_template = tokenizer.chat_template

    def apply_chat_template(self, messages, **kwargs):
        return self.tokenizer.apply_chat_template(messages, **kwargs)

    def save_pretrained(self, directory: str) -> None:
        self.tokenizer.save_pretrained(directory)

    @classmethod
    def from_pretrained(cls, path: str) -> "TextProcessor":
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(path))


class CausalLMFamily(Family):
    name = "causal_lm"
    model_types = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3")
    model_class = "AutoModelForCausalLM"

    def load_processor(self, path: str):
        return TextProcessor.from_pretrained(path)
