"""Convert an original haotian-liu/LLaVA-1.5 checkpoint into a llava-hf one that train.py and eval.* load.

    python scripts/convert_llava_checkpoint.py --model-path liuhaotian/llava-v1.5-7b (a local folder) \\
        --vision-tower clip-vit-large-patch14-336 (a local CLIP folder) --save-path checkpoints/llava-v1.5-7b-hf

The original folder holds a `LlavaLlamaForCausalLM` (Llama weights under `model.layers.*`, the projector under
`model.mm_projector.0/2.*`, LLaVA's `mm_*` config keys, `.bin` or `.safetensors` shards, read with
`weights_only=True`) and its tokenizer; the vision tower is not in it (LLaVA loads CLIP by name), so it comes from
`--vision-tower`. The result:

- weights under llava-hf's names, in the hub layout that transformers 4.x and 5.x both read (`model/export.py`);
- the tokenizer with `<image>` and `<pad>` added, as llava-hf's conversion does; the embedding and lm_head grow
  to a multiple of 64 rows, the new rows set to the mean of the old ones (the `<image>` row is never used: its
  positions receive image features). Logits over the original vocabulary equal the original model's;
- CLIP's image processor, and a processor that expands `<image>` into the image tokens;
- `prompt_format.json` = llava_v1 (LLaVA-1.5's vicuna_v1), so eval.* asks the model as it was tuned.

What llava-hf cannot express is an error: projectors other than mlp2x_gelu, image start/end or patch tokens,
anyres patch merging.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from llava_thanora.data.conversation import PromptFormat, write_prompt_format
from llava_thanora.model.builder import DTYPES
from llava_thanora.model.export import save_portable
from llava_thanora.model.original import SELECT_FEATURE, hf_name, is_original_config, read_tensors
from llava_thanora.model.tiny import CHAT_TEMPLATE

IMAGE_TOKEN, PAD_TOKEN = "<image>", "<pad>"
TOWER_PREFIX = "model.vision_tower."  # some original checkpoints carry a copy of the tower; LLaVA ignores it


def original_config(path: Path) -> dict:
    file = path / "config.json"
    if not file.is_file():
        raise SystemExit(f"{path} has no config.json")
    config = json.loads(file.read_text())
    if not is_original_config(config):
        raise SystemExit(f"{file} is not an original LLaVA config (no LlavaLlamaForCausalLM / mm_vision_tower): "
                         "it loads as it is")
    problems = []
    if config.get("mm_projector_type", "linear") != "mlp2x_gelu":  # LLaVA's default is linear
        problems.append(f"mm_projector_type {config.get('mm_projector_type', 'linear')} (llava-hf: mlp2x_gelu)")
    for key in ("mm_use_im_start_end", "mm_use_im_patch_token"):
        if config.get(key):
            problems.append(f"{key} true (llava-hf has no such tokens)")
    if config.get("mm_patch_merge_type", "flat") != "flat":
        problems.append(f"mm_patch_merge_type {config['mm_patch_merge_type']} (LLaVA-NeXT; llava-hf LLaVA-1.5: flat)")
    if config.get("mm_vision_select_feature", "patch") not in SELECT_FEATURE:
        problems.append(f"mm_vision_select_feature {config['mm_vision_select_feature']}")
    if problems:
        raise SystemExit(f"{file}: cannot be expressed as a llava-hf LLaVA-1.5: " + "; ".join(problems))
    return config


def weight_files(path: Path) -> list[Path]:
    files = sorted(path.glob("*.safetensors")) or sorted(path.glob("pytorch_model*.bin"))
    if not files:
        raise SystemExit(f"{path}: no *.safetensors or pytorch_model*.bin weights")
    return files


def build_config(config: dict, vision, vocab_size: int, image_id: int, pad_id: int):
    from transformers import LlamaConfig, LlavaConfig

    known = LlamaConfig().to_dict().keys()
    text = {k: v for k, v in config.items() if k in known and k not in ("architectures", "model_type")}
    text.update(vocab_size=vocab_size, pad_token_id=pad_id)
    if config["mm_hidden_size"] != vision.hidden_size:
        raise SystemExit(f"mm_hidden_size {config['mm_hidden_size']} does not match the vision tower's hidden size "
                         f"{vision.hidden_size}: --vision-tower is not the tower this model was trained with")
    strategy = SELECT_FEATURE[config.get("mm_vision_select_feature", "patch")]
    patches = (vision.image_size // vision.patch_size) ** 2
    return LlavaConfig(
        text_config=LlamaConfig(**text), vision_config=vision, image_token_id=image_id,
        vision_feature_layer=config.get("mm_vision_select_layer", -1), vision_feature_select_strategy=strategy,
        projector_hidden_act="gelu", image_seq_length=patches + (strategy == "full"), pad_token_id=pad_id,
    )


def copy_weights(model, files: list[Path], old_vocab: int) -> None:
    """Every original tensor into its llava-hf parameter, shard by shard; vocabulary rows beyond the original
    ones become the mean of those."""
    params = dict(model.named_parameters())
    filled, skipped = set(), 0
    for file in files:
        for key, value in read_tensors(file).items():
            if key.startswith(TOWER_PREFIX):
                skipped += 1
                continue
            name = hf_name(key)
            if name is None or name not in params:
                raise SystemExit(f"{file}: tensor {key!r} has no llava-hf counterpart")
            target = params[name]
            with torch.no_grad():
                if name.endswith(("embed_tokens.weight", "lm_head.weight")):
                    if value.shape[0] != old_vocab:
                        raise SystemExit(f"{file}: {key} has {value.shape[0]} rows, config vocab_size {old_vocab}")
                    target[:old_vocab] = value.to(target.dtype)
                    target[old_vocab:] = value.float().mean(0).to(target.dtype)
                elif tuple(value.shape) != tuple(target.shape):
                    raise SystemExit(f"{file}: {key} has shape {tuple(value.shape)}, expected {tuple(target.shape)}")
                else:
                    target.copy_(value.to(target.dtype))
            filled.add(name)
    if skipped:
        print(f"ignored {skipped} vision-tower tensors of the original checkpoint (LLaVA loads the tower from "
              f"--vision-tower too)")
    missing = sorted(n for n in params if n not in filled and not n.startswith(TOWER_PREFIX))
    if missing:
        raise SystemExit(f"the original checkpoint has no values for {len(missing)} parameters, e.g. {missing[:3]}")


def convert(model_path: str, vision_tower: str, save_path: str, dtype: str | None = None,
            pad_vocab_to: int = 64) -> Path:
    from transformers import (
        AutoTokenizer, CLIPVisionConfig, CLIPVisionModel, GenerationConfig,
        LlavaForConditionalGeneration, LlavaProcessor,
    )

    from llava_thanora.data.images import load_image_processor

    src = Path(model_path)
    config = original_config(src)
    tokenizer = AutoTokenizer.from_pretrained(src)
    old_vocab = config["vocab_size"]
    if len(tokenizer) != old_vocab:
        raise SystemExit(f"{src}: the tokenizer has {len(tokenizer)} tokens, config vocab_size {old_vocab}")
    tokenizer.add_tokens([IMAGE_TOKEN], special_tokens=True)
    tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    vocab = -(-len(tokenizer) // pad_vocab_to) * pad_vocab_to
    vision = CLIPVisionConfig.from_pretrained(vision_tower)
    llava = build_config(config, vision, vocab, tokenizer.convert_tokens_to_ids(IMAGE_TOKEN), tokenizer.pad_token_id)
    torch_dtype = DTYPES[dtype or str(config.get("torch_dtype") or config.get("dtype") or "float32")]
    model = LlavaForConditionalGeneration._from_config(llava, dtype=torch_dtype)
    copy_weights(model, weight_files(src), old_vocab)
    clip, info = CLIPVisionModel.from_pretrained(vision_tower, output_loading_info=True, dtype=torch_dtype)
    if info["missing_keys"]:
        raise SystemExit(f"{vision_tower}: no weights for {sorted(info['missing_keys'])[:3]}")
    model.model.vision_tower.load_state_dict(clip.state_dict())
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id,
                                               eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    processor = LlavaProcessor(
        image_processor=load_image_processor(vision_tower), tokenizer=tokenizer,  # PIL: LLaVA's pixels
        patch_size=vision.patch_size, vision_feature_select_strategy=llava.vision_feature_select_strategy,
        num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE)
    out = save_portable(model, processor, save_path)
    write_prompt_format(out, PromptFormat.from_processor(processor, "llava_v1"))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-path", required=True, help="The original-layout LLaVA-1.5 folder (with its tokenizer).")
    ap.add_argument("--vision-tower", required=True, help="A local CLIP folder (the config's mm_vision_tower).")
    ap.add_argument("--save-path", required=True, help="Where to write the llava-hf checkpoint.")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="Weights dtype (default: the checkpoint's).")
    args = ap.parse_args(argv)
    out = convert(args.model_path, args.vision_tower, args.save_path, args.dtype)
    print(f"converted {args.model_path} (+ {args.vision_tower}) -> {out}")


if __name__ == "__main__":
    sys.exit(main())
