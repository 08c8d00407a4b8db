"""ThanoRA cost benchmark: training step time, peak memory and initialization time vs plain LoRA / CorDA.

Prints Markdown tables and the exact command. Not a test. Examples:
  python bench/bench_thanora.py                                   # CPU, hidden 512, 4 layers, seq 256, batch 4
  python bench/bench_thanora.py --device cuda --dtype bf16 --llava7b-shapes --layers 8 --batch 8 --seq 1024

Step time: LoRA and ThanoRA (T = 4 and 16, penalty on) steps are measured alternately in one process
(interleaved repeats); the reported ratio is the median of the per-repeat ratios.
Memory: on CUDA, torch.cuda.max_memory_allocated over the training steps; on CPU, the peak RSS
(resource.getrusage) of a fresh subprocess per method that builds the model and trains, so one run
cannot inherit another's high-water mark.
Init: apply_thanora (preview forwards + spectra + allocation + blocks) next to peft's CorDA
(preprocess_corda + get_peft_model) on the same model and the same T x N samples, each in a fresh process
(alternating, fastest of --init-repeats), with its peak RSS and, for ThanoRA, the time per module type.
llava-1.5-7b width, one decoder layer, as in BENCHMARKS.md:
  python bench/bench_thanora.py --llava7b-shapes --layers 1 --vocab 1024 --r 128 \
      --skip step,memory,checkpoint,corda --preview-samples 64 --seq 256 --cov-budget-mb 1024 --init-repeats 1
Checkpoint: the bytes `save_thanora` writes per init mode next to peft's save_pretrained of the same LoRA.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from peft.tuners.lora.config import CordaConfig
from peft.tuners.lora.corda import preprocess_corda
from transformers import LlamaConfig, LlamaForCausalLM

from llava_thanora.thanora import ThanoRAConfig, apply_thanora

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0}  # dense bf16


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--intermediate", type=int, default=1376)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--vocab", type=int, default=2048)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--r", type=int, default=64)
    p.add_argument("--tasks", default="4,16", help="comma-separated numbers of tasks T")
    p.add_argument("--lam", type=float, default=0.1)
    p.add_argument("--repeats", type=int, default=12)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--mem-steps", type=int, default=3)
    p.add_argument("--preview-samples", type=int, default=8, help="N samples per task for the init timing")
    p.add_argument("--cov-budget-mb", type=float, default=4096.0, help="ThanoRAConfig.cov_budget_mb for the init")
    p.add_argument("--cov-dtype", default="float64", help="ThanoRAConfig.cov_dtype for the init")
    p.add_argument("--init", default="activation", help="ThanoRAConfig.init for the init timing")
    p.add_argument("--init-repeats", type=int, default=2, help="alternating repeats of each init (fastest kept)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--attn", default="auto", help="attention implementation; auto = flash_attention_2 on CUDA when "
                   "flash-attn is installed, else sdpa")
    p.add_argument("--llava7b-shapes", action="store_true",
                   help="hidden 4096, inter 11008, 32 heads, vocab 32064, 32 layers (each unless given)")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: step,memory,init,checkpoint (or corda, "
                   "thanora inside init)")
    p.add_argument("--peak-tflops", type=float, default=0.0, help="for MFU; 0 = guess from the GPU name")
    p.add_argument("--memory-child", default="", help=argparse.SUPPRESS)
    p.add_argument("--init-child", default="", help=argparse.SUPPRESS)
    p.add_argument("--init-tasks", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.llava7b_shapes:  # its shapes, except what the command line names itself (e.g. --layers 1 --vocab 1024)
        given = {word.split("=")[0] for word in (argv if argv is not None else sys.argv[1:])}
        shapes = {"hidden": 4096, "intermediate": 11008, "heads": 32, "vocab": 32064, "layers": 32}
        for name, value in shapes.items():
            if f"--{name}" not in given:
                setattr(args, name, value)
    return args


def attention(args) -> str:
    """flash_attention_2 on CUDA when flash-attn is installed, else sdpa (or what --attn names)."""
    if args.attn != "auto":
        return args.attn
    return "flash_attention_2" if _cuda(args) and importlib.util.find_spec("flash_attn") else "sdpa"


def build_base(args) -> LlamaForCausalLM:
    config = LlamaConfig(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
                         num_hidden_layers=args.layers, num_attention_heads=args.heads,
                         num_key_value_heads=args.heads, max_position_embeddings=max(args.seq, 2048))
    torch.manual_seed(0)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    with torch.device(args.device):
        model = LlamaForCausalLM._from_config(config, dtype=dtype, attn_implementation=attention(args))
    return model.eval()


def task_batches(args, num_tasks: int, samples: int) -> dict[str, list[dict]]:
    """Synthetic tasks that differ in token range and rhythm, `samples` rows each, batches of args.batch."""
    gen = torch.Generator().manual_seed(1)
    tasks = {}
    for t in range(num_tasks):
        low = (t * args.vocab) // (2 * num_tasks)
        batches = []
        for start in range(0, samples, args.batch):
            ids = torch.randint(low, args.vocab, (min(args.batch, samples - start), args.seq), generator=gen)
            ids[:, :: t + 2] = t
            batches.append({"input_ids": ids, "attention_mask": torch.ones_like(ids)})
        tasks[f"task{t}"] = batches
    return tasks


def lora_config(args) -> LoraConfig:
    return LoraConfig(r=args.r, lora_alpha=2 * args.r, target_modules=TARGETS, lora_dropout=0.0)


def build_method(args, base, method: str, num_tasks: int):
    """(model, state or None) for "lora" or "thanora"; ThanoRA previews 2 samples per task (cheap)."""
    model = copy.deepcopy(base)
    if method == "lora":
        return get_peft_model(model, lora_config(args)), None
    config = ThanoRAConfig(lam=args.lam, penalty_side="AB", preview_samples=2)
    return apply_thanora(model, lora_config(args), config, task_batches(args, num_tasks, 2))


def make_step(args, model, state):
    """A closure running one full training step on a fixed batch."""
    model.train()
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    gen = torch.Generator().manual_seed(2)
    ids = torch.randint(0, args.vocab, (args.batch, args.seq), generator=gen).to(args.device)

    def step() -> None:
        if state is not None:
            state.start_step()
        loss = model(input_ids=ids, labels=ids).loss
        if state is not None:
            loss = loss + args.lam * state.finish_step()
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)

    return step


def timed(args, fn) -> float:
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def flops_per_step(args, model) -> float:
    """Frozen weights: forward + input-grad backward (4 flops/param/token); LoRA weights 6; attention
    scores and values 2 * 2 * seq * hidden per token per layer forward, x3 with backward (causal not halved)."""
    tokens = args.batch * args.seq
    frozen = sum(p.numel() for n, p in model.named_parameters() if not p.requires_grad and "embed_tokens" not in n)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    attention = 3 * 4 * args.layers * args.seq * args.hidden
    return tokens * (4 * frozen + 6 * trainable + attention)


def bench_steps(args, base, task_counts) -> list[str]:
    models = {"lora": build_method(args, base, "lora", 1)}
    for t in task_counts:
        models[f"thanora T={t}"] = build_method(args, base, "thanora", t)
    steps = {name: make_step(args, model, state) for name, (model, state) in models.items()}
    times = {name: [] for name in steps}
    cpu_times = {name: [] for name in steps}  # process CPU time: less sensitive to other jobs on the host
    for rep in range(args.warmup + args.repeats):
        names = list(steps)
        for name in names[rep % len(names):] + names[: rep % len(names)]:  # alternate, rotating the order
            step = steps[name]
            cpu_start = time.process_time()
            elapsed = timed(args, step)
            if rep >= args.warmup:
                times[name].append(elapsed)
                cpu_times[name].append(time.process_time() - cpu_start)
    tokens = args.batch * args.seq
    peak = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items()
                                     if args.device.startswith("cuda") and k in torch.cuda.get_device_name()), 0.0)
    rows = ["| method | median step (s) | ratio to LoRA, wall (median of per-repeat ratios) | ratio, process CPU time "
            "| tokens/s | MFU |", "|---|---|---|---|---|---|"]
    for name, values in times.items():
        ratio = statistics.median(v / l for v, l in zip(values, times["lora"]))
        cpu_ratio = statistics.median(v / l for v, l in zip(cpu_times[name], cpu_times["lora"]))
        median = statistics.median(values)
        mfu = f"{flops_per_step(args, models[name][0]) / median / (peak * 1e12):.1%}" if peak else "n/a"
        rows.append(f"| {name} | {median:.4f} | {ratio:.3f} | {cpu_ratio:.3f} | {tokens / median:,.0f} | {mfu} |")
    return rows


def _cuda(args) -> bool:
    return args.device.startswith("cuda")


def _release(args) -> None:
    """Free what an in-process measurement left, so that the next one starts from the same memory (CUDA; on
    CPU an in-process peak RSS cannot be reset anyway)."""
    if _cuda(args):
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_mib(args) -> float:
    if _cuda(args):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure_memory(args, method: str, num_tasks: int) -> dict:
    """Build, train mem_steps steps; the peak (CUDA max allocated, or this process's peak RSS) and the memory
    before the steps, in MiB."""
    base = build_base(args)
    model, state = build_method(args, base, method, num_tasks)
    del base
    step = make_step(args, model, state)
    if _cuda(args):
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 2**20
    else:
        with open("/proc/self/status") as status:  # current RSS, to show what the training steps add
            before = next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024
    for _ in range(args.mem_steps):
        step()
    return {"peak_mib": _peak_mib(args), "before_mib": before}


def _child(flag: str, value: str, extra: tuple[str, ...] = ()) -> dict:
    """Run this script again as a fresh process with `flag value`; its last stdout line is JSON."""
    cmd = [sys.executable, __file__, *sys.argv[1:], flag, value, *extra]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])


def bench_memory(args, task_counts, isolate: bool = True) -> list[str]:
    """Peak memory of LoRA and ThanoRA training steps. `isolate`: each in a fresh process (needed for CPU RSS);
    else in this process, which is exact for CUDA's max allocated (the GPU suite)."""
    kind = "CUDA max allocated" if _cuda(args) else "peak RSS of a fresh process" if isolate else "peak RSS (in-process)"
    rows = [f"| method | {kind} (MiB) | ratio to LoRA | before the training steps (MiB) |", "|---|---|---|---|"]
    results = {}
    for method, t in [("lora", 1)] + [("thanora", t) for t in task_counts]:
        if isolate:
            result = _child("--memory-child", f"{method}:{t}")
        else:
            _release(args)
            result = measure_memory(args, method, t)
        results[method if method == "lora" else f"thanora T={t}"] = result
    for name, result in results.items():
        peak = result["peak_mib"]
        rows.append(f"| {name} | {peak:,.0f} | {peak / results['lora']['peak_mib']:.3f} | {result['before_mib']:,.0f} |")
    return rows


@contextlib.contextmanager
def _timing_thanora_parts(args, breakdown: dict[str, float]):
    """Time ThanoRA's covariance accumulation, its spectra per module type and the eigenvectors of C (activation
    init) while inside."""
    import llava_thanora.thanora.apply as apply_module
    import llava_thanora.thanora.covariance as covariance_module
    from llava_thanora.thanora.blocks import CovarianceFactorization

    nested = [0.0]  # eigenvector time spent inside task_factors, counted on its own row

    def timed_by(key_of, fn, inner: bool):
        def wrapper(*a, **k):
            start, before = time.perf_counter(), nested[0]
            try:
                return fn(*a, **k)
            finally:
                elapsed = time.perf_counter() - start
                if inner:
                    nested[0] += elapsed
                else:
                    elapsed -= nested[0] - before
                breakdown[key_of(*a)] = breakdown.get(key_of(*a), 0.0) + elapsed
        return wrapper

    # Module types by their weight's shape (q/k/v/o share one).
    shapes = {(args.hidden, args.hidden): "q/k/v/o_proj", (args.intermediate, args.hidden): "gate/up_proj",
              (args.hidden, args.intermediate): "down_proj"}
    original = apply_module.task_factors, CovarianceFactorization.top_eigenvectors, covariance_module.add_gram_
    apply_module.task_factors = timed_by(lambda w, *_: f"spectrum of W C_t, {shapes.get(tuple(w.shape), 'other')}",
                                         original[0], inner=False)
    CovarianceFactorization.top_eigenvectors = timed_by(
        lambda self, *_: f"top eigenvectors of C_t (activation init), d_in = {self.cov.shape[0]}", original[1],
        inner=True)
    covariance_module.add_gram_ = timed_by(lambda *_: f"covariance accumulation ({args.cov_dtype})", original[2],
                                           inner=False)
    try:
        yield
    finally:
        apply_module.task_factors, CovarianceFactorization.top_eigenvectors, covariance_module.add_gram_ = original


def measure_init(args, method: str, num_tasks: int) -> dict:
    """Build the base, run one init (ThanoRA or peft's CorDA) on the preview samples: the seconds, the peak
    memory and, for ThanoRA, where the time went."""
    base = build_base(args)
    # peft's CorDA hook needs one sample per forward (it squeezes dim 0), so both get batch-1 forwards.
    tasks = task_batches(argparse.Namespace(**{**vars(args), "batch": 1}), num_tasks, args.preview_samples)
    breakdown: dict[str, float] = {}
    if method == "corda":
        corda = LoraConfig(r=args.r, lora_alpha=2 * args.r, target_modules=TARGETS, init_lora_weights="corda",
                           corda_config=CordaConfig(corda_method="ipm"))

        def run_model() -> None:
            for batches in tasks.values():
                for batch in batches:
                    base(**{k: v.to(args.device) for k, v in batch.items()})

        def run() -> None:
            preprocess_corda(base, corda, run_model=run_model)
            get_peft_model(base, corda)

        seconds = timed(args, run)
    else:
        config = ThanoRAConfig(preview_samples=args.preview_samples, cov_budget_mb=args.cov_budget_mb,
                               cov_dtype=args.cov_dtype, init=args.init)
        with _timing_thanora_parts(args, breakdown):
            seconds = timed(args, lambda: apply_thanora(base, lora_config(args), config, tasks))
        breakdown["preview forwards, allocation, blocks (the rest)"] = seconds - sum(breakdown.values())
    return {"seconds": seconds, "peak_mib": _peak_mib(args), "breakdown": breakdown}


def bench_init(args, num_tasks: int, isolate: bool = True) -> list[str]:
    """ThanoRA vs CorDA init on the same model and samples, alternating; `isolate` as in bench_memory."""
    samples = num_tasks * args.preview_samples
    names = {"corda": "CorDA (peft preprocess_corda + get_peft_model)",
             "thanora": f"ThanoRA T={num_tasks}, init={args.init}, cov_dtype={args.cov_dtype}"}
    methods = [m for m in ("corda", "thanora") if m not in args.skip.split(",")]
    results: dict[str, list[dict]] = {m: [] for m in methods}
    for _ in range(args.init_repeats):
        for method in methods:
            if isolate:
                results[method].append(_child("--init-child", method, ("--init-tasks", str(num_tasks))))
            else:
                _release(args)
                results[method].append(measure_init(args, method, num_tasks))
    best = {m: min(r, key=lambda x: x["seconds"]) for m, r in results.items()}
    memory = "CUDA max allocated" if _cuda(args) else "peak RSS" + ("" if isolate else " (in-process)")
    rows = [f"| init ({samples} samples = {num_tasks} tasks x {args.preview_samples} of {args.seq} tokens, batch-1 "
            f"forwards; fastest of {args.init_repeats}) | total (s) | ms / sample | ratio to CorDA | {memory} (MiB) |",
            "|---|---|---|---|---|"]
    for method, result in best.items():
        ratio = f"{result['seconds'] / best['corda']['seconds']:.2f}" if "corda" in best else "n/a"
        rows.append(f"| {names[method]} | {result['seconds']:.2f} | {1000 * result['seconds'] / samples:.1f} | {ratio} "
                    f"| {result['peak_mib']:,.0f} |")
    if "thanora" in best:
        rows += ["", "| ThanoRA init, where the time went | s | share |", "|---|---|---|"]
        total = best["thanora"]["seconds"]
        for key, value in sorted(best["thanora"]["breakdown"].items(), key=lambda kv: -kv[1]):
            rows.append(f"| {key} | {value:.2f} | {value / total:.0%} |")
    return rows


def bench_checkpoint(args, num_tasks: int) -> list[str]:
    """Bytes that a checkpoint of each init mode holds for the adapter (what `save_thanora` writes) next to peft's
    own `save_pretrained` of a plain LoRA at the same rank on the same modules."""
    import tempfile

    from llava_thanora.thanora import save_thanora

    def size(directory: Path) -> int:
        return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())

    base = build_base(args)
    rows = ["| adapter files of one checkpoint | bytes | ratio to LoRA | files |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        lora_dir = Path(tmp) / "lora"
        get_peft_model(copy.deepcopy(base), lora_config(args)).save_pretrained(str(lora_dir))
        lora_bytes = size(lora_dir)
        rows.append(f"| LoRA r={args.r} (peft save_pretrained) | {lora_bytes:,} | 1.000 | "
                    f"{', '.join(sorted(p.name for p in lora_dir.iterdir()))} |")
        for mode in ("activation", "random", "context"):
            out = Path(tmp) / mode
            model, state = apply_thanora(copy.deepcopy(base), lora_config(args),
                                         ThanoRAConfig(init=mode, preview_samples=2), task_batches(args, num_tasks, 2))
            save_thanora(str(out), model, state)
            rows.append(f"| ThanoRA init={mode}, T={num_tasks} | {size(out):,} | {size(out) / lora_bytes:.3f} | "
                        f"{', '.join(sorted(p.name for p in out.iterdir()))} |")
    return rows


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.memory_child:  # the fresh child processes of bench_memory / bench_init print one JSON line
        method, num_tasks = args.memory_child.split(":")
        print(json.dumps(measure_memory(args, method, int(num_tasks))))
        return
    if args.init_child:
        print(json.dumps(measure_init(args, args.init_child, args.init_tasks)))
        return
    task_counts = [int(t) for t in args.tasks.split(",")]
    skip = set(filter(None, args.skip.split(",")))
    print("command: python " + " ".join(sys.argv))
    print(f"model: LlamaForCausalLM hidden {args.hidden}, inter {args.intermediate}, {args.layers} layers, "
          f"vocab {args.vocab}; batch {args.batch} x seq {args.seq}; r {args.r}; {args.device} {args.dtype}; "
          f"attention {attention(args)}; torch threads {torch.get_num_threads()}\n")
    if "step" not in skip:
        print("\n".join(bench_steps(args, build_base(args), task_counts)) + "\n", flush=True)
    if "memory" not in skip:
        print("\n".join(bench_memory(args, task_counts)) + "\n", flush=True)
    if "init" not in skip:
        print("\n".join(bench_init(args, task_counts[0])) + "\n", flush=True)
    if "checkpoint" not in skip:
        print("\n".join(bench_checkpoint(args, task_counts[0])) + "\n", flush=True)


if __name__ == "__main__":
    main()
