"""Write a LLaVA model in the layout both transformers lines read: llava-hf's hub layout and tokenizer files.

transformers 5 saves `vision_tower.embeddings.*`, 4.x expects `vision_tower.vision_model.embeddings.*` (it then
loads with the vision tower silently random); 5 saves `extra_special_tokens` as a list and the image processor
nested in processor_config.json, which 4.x cannot read. The layout of the llava-hf checkpoints on the hub
(`language_model.model.*`, `language_model.lm_head.weight`, `vision_tower.vision_model.*`, `multi_modal_projector.*`,
a flat preprocessor_config.json) is read by both, so `save_portable` writes that: merged and converted checkpoints
then load in lmms-eval, vLLM and LLaVA-derived tools on 4.x, and here, with the same logits.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

# transformers 5 parameter names of LlavaForConditionalGeneration -> llava-hf's hub names (read by 4.x and 5.x)
HUB_PREFIXES = (
    ("model.language_model.", "language_model.model."),
    ("lm_head.", "language_model.lm_head."),
    ("model.vision_tower.", "vision_tower.vision_model."),
    ("model.multi_modal_projector.", "multi_modal_projector."),
)
SHARD_SIZE = "5GB"


def hub_name(name: str) -> str:
    for new, old in HUB_PREFIXES:
        if name.startswith(new):
            return old + name[len(new):]
    raise KeyError(f"{name!r} has no place in the llava-hf layout")


def portable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights under llava-hf's hub names, contiguous, on CPU."""
    return {hub_name(name): t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()}


def _tokenizer_files_for_4x(directory: Path) -> None:
    """tokenizer_config.json as 4.x reads it: special tokens in `added_tokens_decoder`, no v5-only list, and a
    class name 4.x knows (v5's generic `TokenizersBackend` is 4.x's `PreTrainedTokenizerFast`)."""
    path = directory / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config.pop("extra_special_tokens", None)
    if config.get("tokenizer_class") == "TokenizersBackend":
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
    tokenizer = json.loads((directory / "tokenizer.json").read_text())
    config["added_tokens_decoder"] = {
        str(t["id"]): {k: t[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
        for t in tokenizer.get("added_tokens", [])}
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def _processor_files_for_4x(directory: Path) -> None:
    """The image processor in its own flat preprocessor_config.json (4.x does not read it nested in
    processor_config.json); the processor's own settings stay in processor_config.json."""
    path = directory / "processor_config.json"
    config = json.loads(path.read_text())
    image = config.pop("image_processor", None)
    if image is not None:
        image["image_processor_type"] = image.get("image_processor_type", "CLIPImageProcessor").removesuffix("Pil")
        image.setdefault("processor_class", config.get("processor_class", "LlavaProcessor"))
        (directory / "preprocessor_config.json").write_text(json.dumps(image, indent=2) + "\n")
    config.pop("tokenizer", None)
    path.write_text(json.dumps(config, indent=2) + "\n")


def save_portable(model: torch.nn.Module, processor, directory: str | Path) -> Path:
    """Write `model` (a transformers LlavaForConditionalGeneration) and `processor` into `directory` in the
    llava-hf hub layout: config, safetensors shards with an index, tokenizer and processor files."""
    from huggingface_hub import save_torch_state_dict

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(out)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(out)
    save_torch_state_dict(portable_state(model), out, max_shard_size=SHARD_SIZE, metadata={"format": "pt"})
    processor.save_pretrained(out)
    _tokenizer_files_for_4x(out)
    _processor_files_for_4x(out)
    return out
