"""Answers/second of batched generation vs batch size 1, same model and questions, one run, identical answers.

    python bench/bench_generate.py [--model-path M] [--benchmark minimix_vqa] [--n 64] [--batch-sizes 1,4,16]

Without --model-path it builds the tiny random LLaVA (its answers are gibberish but deterministic; speed is what is
measured). Repeats are interleaved (bs1, bs16, bs1, bs16, ...) and the median is reported, because these machines
are noisy. Prints a Markdown table and the command.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> None:
    from eval.benchmarks import get_benchmarks
    from eval.generate import Generator, load_questions
    from llava_thanora.methods.loading import load_trained
    from llava_thanora.model.tiny import build_tiny_llava

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-path", default=None)
    ap.add_argument("--model-base", default=None)
    ap.add_argument("--benchmark", default="minimix_vqa")
    ap.add_argument("--data-root", default=None, help="root of the benchmark's files (default: the entry's own)")
    ap.add_argument("--n", type=int, default=64, help="questions")
    ap.add_argument("--batch-sizes", default="1,4,16")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)

    tmp = tempfile.mkdtemp()
    model_path = args.model_path or str(build_tiny_llava(Path(tmp) / "tiny"))
    model, processor, _ = load_trained(model_path, args.model_base)
    model.to(args.device)
    bench = get_benchmarks(args.benchmark)[0]
    paths = bench.paths(args.data_root)
    questions = load_questions(str(paths.question_file), limit=args.n)
    gen = Generator(model, processor, str(paths.image_folder), max_new_tokens=args.max_new_tokens, model_id="bench")
    # The same number of tokens for every answer, so batching cannot win by stopping early.
    model.generation_config.eos_token_id = None
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    times: dict[int, list[float]] = {b: [] for b in sizes}
    gen.run(questions[: max(sizes)], Path(tmp) / "warmup.jsonl", max(sizes), bench.prompt_suffix, progress=False)
    for rep in range(args.repeats):
        for b in sizes:
            out = Path(tmp) / f"a_{b}_{rep}.jsonl"
            start = time.perf_counter()
            gen.run(questions, out, b, bench.prompt_suffix, progress=False)
            times[b].append(time.perf_counter() - start)
    texts = {b: {json.loads(r)["question_id"]: json.loads(r)["text"] for r in (Path(tmp) / f"a_{b}_0.jsonl").read_text().splitlines()}
             for b in sizes}
    same = all(texts[b] == texts[sizes[0]] for b in sizes)
    base = statistics.median(times[sizes[0]])
    print(f"\n`python bench/bench_generate.py {' '.join(argv if argv is not None else sys.argv[1:])}`  "
          f"({args.device}, {torch.get_num_threads()} threads, {len(questions)} questions of {bench.name}, "
          f"{args.max_new_tokens} new tokens each; answers identical across batch sizes: {same})\n")
    print("| batch size | median s | answers/s | speed-up vs bs 1 |\n|---:|---:|---:|---:|")
    for b in sizes:
        t = statistics.median(times[b])
        print(f"| {b} | {t:.2f} | {len(questions) / t:.1f} | {base / t:.2f}x |")
    if not same:
        raise SystemExit("batched answers differ from batch size 1")


if __name__ == "__main__":
    main()
