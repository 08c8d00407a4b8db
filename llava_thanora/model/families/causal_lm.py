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
        """The tokenizer's template on plain-string messages (text LMs' templates take `content` as a string)."""
        plain = [{**m, "content": m["content"] if isinstance(m["content"], str) else
                  "".join(c["text"] for c in m["content"] if c["type"] == "text")} for m in messages]
        return self.tokenizer.apply_chat_template(plain, **kwargs)

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

    def describe(self, model) -> str:
        return f"family {self.name} ({type(model).__name__}, text only: no vision tower, no projector)"

    tiny_special_tokens = ("<|im_start|>", "<|im_end|>")

    def tiny(self, tokenizer, cfg):
        """`cfg.family` "llama" (Llama, Vicuna-style template) or "qwen2" (Qwen2, ChatML)."""
        from transformers import LlamaConfig, Qwen2Config

        from .tiny_parts import chatml_template, text_config

        if cfg.family == "qwen2":
            config, template = Qwen2Config(**text_config(tokenizer, cfg)), chatml_template("")
        else:
            config = LlamaConfig(**text_config(tokenizer, cfg))
            template = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] + ' ' }}{% else %}"
                        "{{ m['role'].upper() + ': ' + m['content'] + ' ' }}{% endif %}{% endfor %}"
                        "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}")
        tokenizer.chat_template = template
        return config, TextProcessor(tokenizer)
