"""Generate and score several benchmarks with one model load, and write one JSON of scores.

    python -m eval.run --model-path OUT --model-base BASE --benchmarks minimix_vqa,minimix_ocr \\
        --output-dir results/lora [--method lora --seed 0] [--batch-size 16] [--data-root D] [--benchmark-dir DIR]

Writes `OUT_DIR/<bench>/answers.jsonl` (resumable, see eval.generate) and `OUT_DIR/scores.json`:
`{"method", "seed", "model", "model_base", "scores": {"<bench>": {"metric", "score", "n", ...}}}`, the input of
`python -m eval.tables`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .benchmarks import DEFAULT_DATA_ROOT, get_benchmarks, missing_files
from .generate import add_conv_mode_flag, load_generator, load_questions
from .io import write_json
from .score import load_annotations, load_predictions, score


def evaluate(generator, bench, data_root: str | None, output_dir: Path, batch_size: int, limit: int | None = None,
             max_new_tokens: int | None = None, progress: bool = True) -> dict:
    """Answer (or finish answering) one benchmark, then score it; the summary dict of eval.score."""
    missing = missing_files(bench, data_root)
    if missing:
        raise FileNotFoundError(f"benchmark {bench.name}: missing {', '.join(map(str, missing))} "
                                f"(see its 'source' field: {bench.source or 'eval/benchmarks/' + bench.name + '.json'})")
    paths = bench.paths(data_root)
    questions = load_questions(str(paths.question_file), limit=limit)
    generator.image_folder = str(paths.image_folder) if paths.image_folder else None
    generator.max_new_tokens = max_new_tokens or bench.max_new_tokens
    answers = output_dir / bench.name / "answers.jsonl"
    generator.run(questions, answers, batch_size, bench.prompt_suffix, progress=progress)
    annotations = load_annotations(paths.annotation_file)
    asked = {str(q["question_id"]): q for q in questions}
    if limit:  # a quick run scores exactly the questions it asked
        annotations = {qid: annotations[qid] for qid in asked}
    predictions = load_predictions(answers, set(annotations))
    summary = score(bench.metric, predictions, annotations, asked, result_file=str(answers))
    summary["answers_file"] = str(answers)
    return summary


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-path", required=True)
    ap.add_argument("--model-base", default=None)
    ap.add_argument("--benchmarks", required=True, help="Comma-separated registry names (python -m eval.benchmarks).")
    ap.add_argument("--data-root", default=None,
                    help=f"Root of the benchmark files (default: each entry's own data_root, else {DEFAULT_DATA_ROOT}).")
    ap.add_argument("--benchmark-dir", action="append", default=[], help="Extra registry folder (repeatable).")
    ap.add_argument("--output-dir", required=True)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=None, help="Override every benchmark's budget.")
    ap.add_argument("--limit", type=int, default=None, help="Only the first N questions of each benchmark.")
    ap.add_argument("--method", default=None, help="Row name in eval.tables (default: the model path's name).")
    ap.add_argument("--seed", type=int, default=None, help="Recorded for mean ± std over seeds in eval.tables.")
    ap.add_argument("--model-id", default=None)
    ap.add_argument("--device", default=None)
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    ap.add_argument("--image-aspect-ratio", default="pad", choices=["pad", "original"])
    add_conv_mode_flag(ap)
    ap.add_argument("--no-progress", action="store_true")
    return ap


def main(argv=None) -> dict:
    import torch

    args = build_parser().parse_args(argv)
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    benches = get_benchmarks(args.benchmarks, args.benchmark_dir)  # fail on a typo before loading the model
    # The image folder and the token budget are set per benchmark in `evaluate`.
    generator = load_generator(args.model_path, args.model_base, args.device, args.dtype,
                               image_aspect_ratio=args.image_aspect_ratio, model_id=args.model_id,
                               conv_mode=args.conv_mode)
    out = Path(args.output_dir)
    result = {"method": args.method or Path(args.model_path.rstrip("/")).name, "seed": args.seed,
              "model": args.model_path, "model_base": args.model_base, "scores": {}}
    for bench in benches:
        summary = evaluate(generator, bench, args.data_root, out, args.batch_size, args.limit, args.max_new_tokens,
                           progress=not args.no_progress)
        result["scores"][bench.name] = summary
        print(f"{bench.name}: {bench.metric} {summary['score']:.2f} (n={summary['n']})")
        write_json(out / "scores.json", result)  # after each benchmark, so a long run leaves partial results
    print(json.dumps({k: v["score"] for k, v in result["scores"].items()}))
    return result


if __name__ == "__main__":
    main()
