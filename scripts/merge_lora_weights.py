"""Merge a trained adapter into its base and write a plain HF LLaVA checkpoint.

    python scripts/merge_lora_weights.py --model-path OUT --model-base BASE --save-model-path MERGED

Works for every mergeable method (LoRA, DoRA, PiSSA, CorDA, ThanoRA, merged task adapters): their top-level
adapter is a peft adapter relative to the original base weights. The projector, if trained, comes from
`non_lora_trainables.safetensors`. MoE-LoRA cannot be merged (its router depends on the input).
"""

import argparse

from llava_thanora.methods.loading import load_trained


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-path", required=True, help="Training output dir (adapter + non_lora_trainables).")
    ap.add_argument("--model-base", required=True, help="The base checkpoint the adapter was trained on.")
    ap.add_argument("--save-model-path", required=True, help="Where to write the merged checkpoint.")
    args = ap.parse_args(argv)
    model, processor, kind = load_trained(args.model_path, args.model_base)
    if kind != "peft":
        raise SystemExit(f"{args.model_path} is a {kind} output; only peft adapters merge (MoE-LoRA keeps its router)")
    merged = model.merge_and_unload()
    merged.save_pretrained(args.save_model_path)
    processor.save_pretrained(args.save_model_path)
    print(f"merged {args.model_path} into {args.model_base} -> {args.save_model_path}")


if __name__ == "__main__":
    main()
