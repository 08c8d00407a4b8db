"""Shared pieces of the tiny checkpoints the families build (`Family.tiny`): chat templates and text configs."""

from __future__ import annotations

# The same shape as llava-1.5-hf's template ("USER: <image>\n... ASSISTANT:"), written for this project. Images come
# first in a turn, then text; the assistant prompt ends with "ASSISTANT:". A system message, if any, is a preamble.
VICUNA_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] + ' ' }}{% endif %}{% endfor %}"
    "{% else %}"
    "{{ message['role'].upper() + ': ' }}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}{{ '<image>\n' }}{% endif %}{% endfor %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] + ' ' }}{% endif %}{% endfor %}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


def vision_kwargs(cfg) -> dict:
    """The CLIP/SigLIP-style vision config fields of a tiny checkpoint (`TinyConfig`)."""
    return dict(hidden_size=cfg.vision_hidden_size, intermediate_size=2 * cfg.vision_hidden_size,
                num_hidden_layers=cfg.vision_layers, num_attention_heads=cfg.num_attention_heads,
                image_size=cfg.image_size, patch_size=cfg.patch_size)


def chatml_template(image_slot: str) -> str:
    """Qwen's ChatML ("<|im_start|>role\\n...<|im_end|>\\n"), with `image_slot` where an image goes."""
    return (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
        "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
        "{% if c['type'] == 'image' %}" + image_slot + "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
        "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


CHATML_TOKENS = ("<|im_start|>", "<|im_end|>")


def text_config(tokenizer, cfg, **extra) -> dict:
    """The language model's sizes from a TinyConfig, with the tokenizer's vocabulary and special ids."""
    return dict(hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
                num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
                num_key_value_heads=cfg.num_attention_heads, vocab_size=len(tokenizer),
                max_position_embeddings=cfg.max_position_embeddings, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **extra)


def pinpoints(side: int) -> list[list[int]]:
    """anyres grid resolutions for a tower of input `side`: 1x1, 1x2, 2x1, 2x2 tiles."""
    return [[side, side], [side, 2 * side], [2 * side, side], [2 * side, 2 * side]]
