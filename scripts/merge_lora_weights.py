"""Merge a trained adapter into its base and write a plain checkpoint of the base's model family.

    python scripts/merge_lora_weights.py --model-path OUT --model-base BASE --save-model-path MERGED

Works for every mergeable method (LoRA, DoRA, PiSSA, CorDA, ThanoRA, merged task adapters): their top-level
adapter is a peft adapter relative to the original base weights; and for LoRA folders written by
haotian-liu/LLaVA (its key layout, `adapter_model.bin`, `non_lora_trainables.bin`), onto the base converted by
scripts/convert_llava_checkpoint.py. The projector, if trained, comes from the non-LoRA trainables.

It stops with an error instead of writing a wrong model: an adapter whose config names modules the base does not
have, or whose file misses tensors for some of them, or that changes nothing. MoE-LoRA cannot be merged (its
router depends on the input).

A LLaVA-1.5 output is in llava-hf's hub layout with tokenizer files both transformers 4.x and 5.x read (checked
with 4.57.6: scripts/check_transformers4.py); other families (LLaVA-NeXT, OneVision, Qwen2-VL, text-only LMs) are
saved as transformers 5 saves them. The adapter's `prompt_format.json` goes along, so eval.* asks it the way it
was trained.
"""

import argparse
import shutil
from pathlib import Path

import torch

from llava_thanora.data.conversation import PROMPT_FORMAT_FILE
from llava_thanora.methods.loading import ORIGINAL_NON_LORA, load_trained
from llava_thanora.model.families import family_of
from llava_thanora.model.original import read_tensors


def changed_layers(model) -> int:
    """How many adapted layers a merge would change (a nonzero B·A); counted before merging."""
    count = 0
    for module in model.modules():
        lora_a, lora_b = getattr(module, "lora_A", None), getattr(module, "lora_B", None)
        if isinstance(lora_a, torch.nn.ModuleDict) and isinstance(lora_b, torch.nn.ModuleDict):
            count += any((lora_b[k].weight.float() @ lora_a[k].weight.float()).abs().max() > 0 for k in lora_a)
    return count


def trained_non_lora(directory: str) -> int:
    """Tensors in the folder's non-LoRA trainables (ours or LLaVA's), which load_trained put into the model."""
    files = [Path(directory) / f for f in ("non_lora_trainables.safetensors", ORIGINAL_NON_LORA)]
    return sum(len(read_tensors(f)) for f in files if f.is_file())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-path", required=True, help="Training output dir (adapter + non_lora_trainables).")
    ap.add_argument("--model-base", required=True, help="The base checkpoint the adapter was trained on.")
    ap.add_argument("--save-model-path", required=True, help="Where to write the merged checkpoint.")
    args = ap.parse_args(argv)
    model, processor, kind = load_trained(args.model_path, args.model_base)
    if kind != "peft":
        raise SystemExit(f"{args.model_path} is a {kind} output; only peft adapters merge (MoE-LoRA keeps its router)")
    layers, others = changed_layers(model), trained_non_lora(args.model_path)
    if layers == 0 and not others:
        raise SystemExit(f"{args.model_path}: the adapter changes nothing (every B·A is zero and no projector or other "
                         f"weight was trained); refusing to write a copy of {args.model_base}")
    merged = model.merge_and_unload()
    out = family_of(merged).save_merged(merged, processor, args.save_model_path)
    recorded = next((Path(d) / PROMPT_FORMAT_FILE for d in (args.model_path, args.model_base)
                     if (Path(d) / PROMPT_FORMAT_FILE).is_file()), None)
    if recorded is not None:
        shutil.copy(recorded, out / PROMPT_FORMAT_FILE)
    print(f"merged {args.model_path} into {args.model_base} ({layers} layers changed, {others} other trained "
          f"tensors) -> {out}")


if __name__ == "__main__":
    main()
