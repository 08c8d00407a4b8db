"""Write a tiny random LLaVA as an ordinary Hugging Face checkpoint, fully offline.

    python -m llava_thanora.model.tiny --output_dir playground/checkpoints/tiny-llava

The result loads with `LlavaForConditionalGeneration.from_pretrained(dir)` and `AutoProcessor.from_pretrained(dir)`
exactly like llava-hf/llava-1.5-7b-hf, so tests and the demo exercise the same code path as real checkpoints:
config + safetensors weights, a SentencePiece tokenizer trained in memory (no tokenizer ships in any package here),
a PIL CLIP image processor, and a vicuna-style chat template shaped like llava-1.5's.
"""

from __future__ import annotations

import io
import itertools
import json
import random
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

from ..flags import documented
from .families.tiny_parts import VICUNA_TEMPLATE, vision_kwargs

# llava-1.5-hf's template shape ("USER: <image>\n... ASSISTANT:"), shared with the LLaVA families' tiny checkpoints.
CHAT_TEMPLATE = VICUNA_TEMPLATE

# A small English corpus for the tokenizer: the words the project's prompts and the embedded minimix tasks use,
# so that the tiny model's sequences have realistic lengths instead of one token per character.
_WORDS = """
a an the is are was of in on at to and or with without this that these those what which who how many much
image picture photo scene shows shown written word words number numbers letter digit handwritten text
shape shapes color colour colors circle square rectangle triangle star diamond cross ellipse line dot
red green blue yellow orange purple pink brown black white gray grey cyan magenta dark light
left right top bottom center middle above below next near corner small large big tiny
question answer answers option options choice choices correct single phrase directly given from
describe description caption sentence one two three four five six seven eight nine ten zero
plus minus times divided equal equals sum product difference value let be d x y if then even odd
greater less than larger smaller there it its there's contains containing drawn background
user assistant system chat human gpt helpful please using only
""".split()


@documented
class TinyConfig:
    """Sizes of the tiny LLaVA. Every field is a command-line flag."""

    hidden_size: int = 64
    """Width of the language model."""
    intermediate_size: int = 128
    """MLP width of the language model."""
    num_hidden_layers: int = 2
    """Decoder layers of the language model."""
    num_attention_heads: int = 4
    """Attention heads of the language model (and of the vision tower)."""
    vision_hidden_size: int = 64
    """Width of the CLIP vision tower."""
    vision_layers: int = 2
    """Layers of the CLIP vision tower (the second to last one feeds the projector, as in LLaVA-1.5)."""
    image_size: int = 32
    """Input resolution of the vision tower."""
    patch_size: int = 8
    """ViT patch size; (image_size / patch_size)^2 image tokens per image."""
    vocab_size: int = 512
    """Target SentencePiece vocabulary (the trainer may stop earlier on the small corpus)."""
    max_position_embeddings: int = 1024
    """Longest sequence the language model supports."""
    seed: int = 0
    """Seed of the random weights and of the tokenizer corpus order."""
    family: str = "llava"
    """Model family: llava (LLaVA-1.5), llava_next, llava_onevision, qwen2_vl, qwen2_5_vl, or a text-only llama /
    qwen2."""
    tokenizer_corpus: str | None = None
    """Comma-separated LLaVA JSON files whose conversation text is added to the tokenizer's training corpus, so a
    model built for a dataset tokenizes its words compactly."""


def _tokenizer_corpus(seed: int, extra_files: str | None = None) -> list[str]:
    """Sentences made from the word list in many orders, so BPE learns whole words and common pairs, plus the
    conversation text of `extra_files`."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(4000):
        n = rng.randint(3, 12)
        sentences.append(" ".join(rng.choice(_WORDS) for _ in range(n)))
    sentences += [" ".join(p) for p in itertools.permutations(["USER:", "ASSISTANT:", "<image>"], 3)]
    sentences += [str(i) for i in range(200)]
    for path in (extra_files or "").split(","):
        if path:
            samples = json.loads(Path(path).read_text(encoding="utf-8"))
            sentences += [t["value"].replace("<image>", "").strip() for s in samples for t in s["conversations"]]
    return sentences


def train_tokenizer(output_dir: Path, cfg: TinyConfig):
    """Train a byte-fallback BPE SentencePiece model in memory and load it as a Llama tokenizer."""
    import sentencepiece as spm
    from transformers import LlamaTokenizer

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_tokenizer_corpus(cfg.seed, cfg.tokenizer_corpus)),
        model_writer=model,
        model_type="bpe",
        vocab_size=cfg.vocab_size,
        hard_vocab_limit=False,  # a small corpus may support fewer pieces; take what it supports
        byte_fallback=True,  # any unseen character still encodes, as in Llama's tokenizer
        character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        user_defined_symbols=["<image>", "<pad>"],
        minloglevel=2,
    )
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "tokenizer.model").write_bytes(model.getvalue())
        # `LlamaTokenizer(vocab_file=...)` silently yields a 3-token vocabulary in transformers 5; from_pretrained works.
        tok = LlamaTokenizer.from_pretrained(tmp, add_bos_token=True, add_eos_token=False, pad_token="<pad>")
        tok.save_pretrained(output_dir)
    return LlamaTokenizer.from_pretrained(output_dir)


TEXT_FAMILIES = ("llama", "qwen2")  # tiny text-only models, built by the causal_lm family


def build_tiny(output_dir: str | Path, cfg: TinyConfig | None = None) -> Path:
    """A tiny random checkpoint of `cfg.family` in `output_dir`, loadable like a real one of that family."""
    import transformers

    from .families import family_classes

    cfg = cfg or TinyConfig()
    if cfg.family == "llava":
        return build_tiny_llava(output_dir, cfg)
    families = family_classes()
    name = "causal_lm" if cfg.family in TEXT_FAMILIES else cfg.family
    if name not in families or name == "llava":
        raise ValueError(f"--family {cfg.family!r}: choose llava, {', '.join(n for n in families if n not in ('llava', 'causal_lm'))}"
                         f", {', '.join(TEXT_FAMILIES)}")
    family = families[name]()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(out, cfg)
    if family.tiny_special_tokens:
        tokenizer.add_special_tokens({"additional_special_tokens": list(family.tiny_special_tokens)})
    config, processor = family.tiny(tokenizer, cfg)
    torch.manual_seed(cfg.seed)
    model_class = getattr(transformers, family.model_class)
    model = (model_class.from_config(config) if family.model_class.startswith("Auto") else
             model_class._from_config(config))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    processor.save_pretrained(out)
    (out / "tiny_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    return out


def build_tiny_llava(output_dir: str | Path, cfg: TinyConfig | None = None) -> Path:
    """Write config, weights, tokenizer, image processor and chat template to `output_dir`; return the path."""
    from transformers import (
        CLIPImageProcessorPil, CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor,
    )

    cfg = cfg or TinyConfig()
    if cfg.image_size % cfg.patch_size:
        raise ValueError(f"image_size {cfg.image_size} is not a multiple of patch_size {cfg.patch_size}")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(out, cfg)
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")

    vision = CLIPVisionConfig(
        **vision_kwargs(cfg), projection_dim=cfg.vision_hidden_size,
    )
    text = LlamaConfig(
        hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_attention_heads, vocab_size=len(tokenizer),
        max_position_embeddings=cfg.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    num_patches = (cfg.image_size // cfg.patch_size) ** 2
    config = LlavaConfig(
        vision_config=vision, text_config=text, image_token_id=image_token_id,
        vision_feature_select_strategy="default", vision_feature_layer=-2, image_seq_length=num_patches,
        projector_hidden_act="gelu",
    )
    torch.manual_seed(cfg.seed)
    model = LlavaForConditionalGeneration._from_config(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)  # safetensors by default

    # CLIP's normalisation constants; resize + centre crop to the tower's resolution, as llava-1.5's processor does.
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": cfg.image_size}, crop_size={"height": cfg.image_size, "width": cfg.image_size},
    )
    processor = LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE,
        patch_size=cfg.patch_size, vision_feature_select_strategy="default", num_additional_image_tokens=1,
    )
    processor.save_pretrained(out)
    (out / "tiny_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    return out


def main(argv: list[str] | None = None) -> None:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(TinyConfig)
    parser.add_argument("--output_dir", required=True, help="Where to write the checkpoint.")
    cfg, rest = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=False)
    path = build_tiny(rest.output_dir, cfg)
    print(f"tiny {cfg.family} written to {path}")


if __name__ == "__main__":
    main()
