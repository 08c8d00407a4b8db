"""The prepared GPU suite behind `bash bench/gpu_suite.sh`: every speed/memory number BENCHMARKS.md needs from one
CUDA GPU, in one process, printed as one Markdown block. Not a test; `--smoke` runs every step on CPU with tiny
shapes (the test suite does, so the suite cannot rot).

Steps (GPU, llava-1.5-7b shapes: hidden 4096, intermediate 11008, 32 heads, vocab 32064; bf16; flash-attn when
installed, else sdpa):
  1. training step time ThanoRA (T = 4, 16, penalty on) / LoRA, tokens/s and MFU, `--layers` decoder layers;
  2. peak memory (CUDA max allocated) of the same training steps, ratio to LoRA;
  3. init time ThanoRA (accurate float64 spectra) vs peft's CorDA, same model and samples (`--init-layers`);
  4. batched generation, batch 16 vs 1, identical answers, on a random mid-size LLaVA built here.
The default sizes are chosen to finish within about 8 minutes on one H100/H200 class GPU; every step prints its
own wall time, and the total is checked against `--budget-s`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import bench_generate  # noqa: E402
import bench_thanora  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="CPU, tiny shapes, every step (seconds, not minutes)")
    p.add_argument("--layers", type=int, default=8, help="decoder layers for the step-time and memory steps")
    p.add_argument("--init-layers", type=int, default=1, help="decoder layers for the init-time step")
    p.add_argument("--budget-s", type=float, default=480.0, help="warn when the whole suite takes longer")
    return p.parse_args(argv)


def step_flags(args) -> list[str]:
    if args.smoke:
        return ["--hidden", "64", "--intermediate", "128", "--heads", "4", "--layers", "1", "--vocab", "256",
                "--seq", "32", "--batch", "2", "--r", "8", "--repeats", "2", "--warmup", "1", "--mem-steps", "1",
                "--tasks", "2,4"]
    return ["--device", "cuda", "--dtype", "bf16", "--llava7b-shapes", "--layers", str(args.layers), "--batch", "8",
            "--seq", "1024", "--r", "128", "--repeats", "10", "--warmup", "3", "--mem-steps", "3", "--tasks", "4,16"]


def init_flags(args) -> list[str]:
    if args.smoke:
        return [*step_flags(args), "--preview-samples", "2", "--init-repeats", "1"]
    return ["--device", "cuda", "--dtype", "bf16", "--llava7b-shapes", "--layers", str(args.init_layers), "--r",
            "128", "--seq", "1024", "--tasks", "4", "--preview-samples", "8", "--init-repeats", "1"]


def generation(args, tmp: Path) -> list[str]:
    from llava_thanora.data.minimix.build import build_minimix
    from llava_thanora.data.minimix.writer import MinimixConfig
    from llava_thanora.model.tiny import TinyConfig, build_tiny_llava

    questions = 4 if args.smoke else 64
    build_minimix(MinimixConfig(output_dir=tmp / "minimix", train_per_task=1, test_per_task=questions,
                                pretrain_samples=1))
    flags = ["--data-root", str(tmp / "minimix"), "--n", str(questions)]
    if args.smoke:
        flags += ["--batch-sizes", "1,4", "--repeats", "1", "--max-new-tokens", "4", "--device", "cpu"]
    else:  # a random LLaVA of about 0.5B parameters with llava-1.5's 576 image tokens (no download)
        model = build_tiny_llava(tmp / "llava-mid", TinyConfig(
            hidden_size=2048, intermediate_size=5504, num_hidden_layers=8, num_attention_heads=16,
            vision_hidden_size=256, vision_layers=2, image_size=336, patch_size=14, max_position_embeddings=2048))
        flags += ["--model-path", str(model), "--batch-sizes", "1,16", "--repeats", "3", "--device", "cuda"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        bench_generate.main(flags)
    return [line for line in printed.getvalue().splitlines() if line.startswith(("|", "`"))]  # not library chatter


def main(argv=None) -> None:
    args = parse_args(argv)
    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("bench/gpu_suite.sh needs a CUDA GPU (or --smoke, which runs every step on CPU)")
    started = time.perf_counter()
    steps = bench_thanora.parse_args(step_flags(args))
    inits = bench_thanora.parse_args(init_flags(args))
    device = "CPU (smoke: tiny shapes, numbers meaningless)" if args.smoke else torch.cuda.get_device_name()
    out = [f"### GPU suite: {device}",
           "",
           f"`bash bench/gpu_suite.sh{' --smoke' if args.smoke else ''}` on {time.strftime('%Y-%m-%d')}: torch "
           f"{torch.__version__}, python {platform.python_version()}, attention {bench_thanora.attention(steps)}.",
           f"Steps 1-2: `python bench/bench_thanora.py {' '.join(step_flags(args))} --skip init`; step 3: "
           f"`python bench/bench_thanora.py {' '.join(init_flags(args))} --skip step,memory` (in one process here).",
           ""]
    with tempfile.TemporaryDirectory() as tmp:
        parts = [
            ("Training step time, ThanoRA / LoRA", lambda: bench_thanora.bench_steps(
                steps, bench_thanora.build_base(steps), [int(t) for t in steps.tasks.split(",")])),
            ("Peak memory of the training steps", lambda: bench_thanora.bench_memory(
                steps, [int(t) for t in steps.tasks.split(",")], isolate=False)),
            ("Initialization, ThanoRA vs CorDA", lambda: bench_thanora.bench_init(
                inits, int(inits.tasks.split(",")[0]), isolate=False)),
            ("Batched generation", lambda: generation(args, Path(tmp))),
        ]
        for title, run in parts:
            start = time.perf_counter()
            rows = run()
            out += [f"**{title}** ({time.perf_counter() - start:.0f} s)", "", *rows, ""]
            bench_thanora._release(steps)
    total = time.perf_counter() - started
    out.append(f"Total {total:.0f} s" + (f" (over the {args.budget_s:.0f} s budget: lower --layers)"
                                          if total > args.budget_s else "") + ".")
    print("\n".join(out))


if __name__ == "__main__":
    main()
