"""Inference overhead of the adapters: base model vs merged LoRA vs unmerged LoRA vs MoE-LoRA.

A merged LoRA stands in for merged ThanoRA: after merging, ThanoRA (one plain LoRA per layer) is a plain
model with the base model's shapes. The unmerged LoRA row is also what unmerged ThanoRA costs. MoE-LoRA
keeps its router at inference and cannot be merged.

All variants run on the same random LlamaForCausalLM (built from a config, no download) and the same
prompts, in ONE process: the repeats are interleaved (the order rotates every round) and the median is
reported, so drifts in machine load hit every variant alike. Greedy decoding with
``min_new_tokens = max_new_tokens`` makes every run generate exactly the same number of tokens.

    python bench/bench_inference.py                                   # CPU, hidden 512, 4 layers (~1 min)
    python bench/bench_inference.py --device cuda --dtype bf16 --llava7b-shapes [--layers 8]
"""

from __future__ import annotations

import argparse
import copy
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from llava_thanora.moelora import MoELoRAConfig, apply_moelora  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)  # peft calls deprecated transformers helpers
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
LLAVA7B = {"hidden": 4096, "intermediate": 11008, "layers": 32, "heads": 32, "vocab": 32064}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=DTYPES, default="fp32")
    p.add_argument("--llava7b-shapes", action="store_true", help="LLaVA-1.5-7B language model shapes")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--intermediate", type=int, default=1376)
    p.add_argument("--layers", type=int, default=None, help="default 4, or 32 with --llava7b-shapes")
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--vocab", type=int, default=32064)
    p.add_argument("--batch-sizes", default="1,8")
    p.add_argument("--prompt-len", type=int, default=64)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--rank", type=int, default=32, help="LoRA rank; MoE-LoRA's shared A and each head")
    p.add_argument("--experts", type=int, default=4, help="MoE-LoRA heads K")
    p.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args()
    if args.llava7b_shapes:
        for key, value in LLAVA7B.items():
            if key != "layers":
                setattr(args, key, value)
        args.layers = args.layers or LLAVA7B["layers"]
    args.layers = args.layers or 4
    return args


def build_variants(args: argparse.Namespace) -> dict[str, torch.nn.Module]:
    """The four models. The unmerged ones share the base's weight tensors; the merged one owns its weights."""
    config = LlamaConfig(
        vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
        num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.heads,
        max_position_embeddings=args.prompt_len + args.new_tokens + 8,
    )
    targets = args.targets.split(",")
    lora = LoraConfig(r=args.rank, lora_alpha=2 * args.rank, target_modules=targets, init_lora_weights=False)
    torch.manual_seed(0)
    with torch.device(args.device):
        base = LlamaForCausalLM._from_config(config, dtype=DTYPES[args.dtype]).eval()

    def shared_copy() -> torch.nn.Module:  # new modules, same parameter tensors
        return copy.deepcopy(base, memo={id(p): p for p in base.parameters()})

    # autocast_adapter_dtype=False keeps peft's adapters in the model dtype, like MoE-LoRA's (peft would
    # otherwise upcast them to float32 under bf16 and time the dtype casts too).
    merged = get_peft_model(copy.deepcopy(base), lora, autocast_adapter_dtype=False).merge_and_unload()
    unmerged = get_peft_model(shared_copy(), lora, autocast_adapter_dtype=False)
    moe = apply_moelora(shared_copy(), MoELoRAConfig(r=args.rank, alpha=2 * args.rank, dropout=0.0,
                                                     num_experts=args.experts, target_modules=targets))
    return {"base": base, "merged LoRA (= merged ThanoRA)": merged, "unmerged LoRA": unmerged,
            "MoE-LoRA (router kept)": moe}


def timed_generate(model: torch.nn.Module, ids: torch.Tensor, new_tokens: int) -> float:
    sync = torch.cuda.synchronize if ids.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, pad_token_id=0,
                         max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    sync()
    elapsed = time.perf_counter() - start
    if out.shape[1] != ids.shape[1] + new_tokens:
        raise RuntimeError(f"generated {out.shape[1] - ids.shape[1]} tokens instead of {new_tokens}")
    return elapsed


@torch.inference_mode()
def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = build_variants(args)
    names = list(variants)
    for model in variants.values():
        model.eval().generation_config.eos_token_id = None  # no early stop; lengths fixed by min/max_new_tokens
    rows = []
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        ids = torch.randint(3, args.vocab, (batch, args.prompt_len), generator=torch.Generator().manual_seed(batch))
        ids = ids.to(args.device)
        times = {name: [] for name in names}
        for name in names:  # warm-up round, not timed
            timed_generate(variants[name], ids, args.new_tokens)
        for rep in range(args.repeats):
            for name in names[rep % len(names):] + names[: rep % len(names)]:
                times[name].append(timed_generate(variants[name], ids, args.new_tokens))
        base_median = statistics.median(times["base"])
        for name in names:
            median = statistics.median(times[name])
            rows.append((batch, name, median, batch * args.new_tokens / median, median / base_median))

    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu, {torch.get_num_threads()} threads"
    print(f"\n`{shlex.join(['python', *sys.argv])}`\n")
    print(f"LlamaForCausalLM hidden {args.hidden}, intermediate {args.intermediate}, {args.layers} layers, "
          f"{args.heads} heads, vocab {args.vocab}; {args.dtype} on {device}; torch {torch.__version__}. "
          f"Prompt {args.prompt_len} tokens, {args.new_tokens} new tokens (greedy); latency = one whole generate "
          f"call (prefill + decode), median of {args.repeats} interleaved repeats. LoRA r={args.rank} on {args.targets}; MoE-LoRA r={args.rank}, K={args.experts}.\n")
    print("| batch | model | latency (s) | tokens/s | latency / base |")
    print("|---:|---|---:|---:|---:|")
    for batch, name, median, tps, ratio in rows:
        print(f"| {batch} | {name} | {median:.3f} | {tps:.1f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
