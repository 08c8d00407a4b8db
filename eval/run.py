"""Generate and score several benchmarks with one model load, and write one JSON of scores.

    python -m eval.run --model-path OUT --model-base BASE --benchmarks minimix_vqa,minimix_ocr \\
        --output-dir results/lora [--method lora --seed 0] [--batch-size 16] [--data-root D] [--benchmark-dir DIR]

Writes `OUT_DIR/<bench>/answers.jsonl` (resumable, with its record; see eval.generate) and `OUT_DIR/scores.json`:
`{"method", "seed", "model", "model_base", "scores": {"<bench>": {"metric", "score", "n", ..., "rescore"}},
"submissions": {"<bench>": {"format", "file", "answered"}}}`, the input of `python -m eval.tables`. Each score is
computed by `eval.score.score_files`, and "rescore" is the eval.score argument list that gives the same summary
from the answers file. A server-scored split (an entry with a "submission" format, e.g. VQAv2 test-dev) gets
`OUT_DIR/<bench>/submission.json`, the file to upload, instead of a score.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .answers import AnswersMismatch
from .benchmarks import DEFAULT_DATA_ROOT, get_benchmarks, missing_files
from .formats import check_suffix, load_benchmark
from .generate import add_conv_mode_flag, load_generator, load_questions
from .io import write_json
from .score import rescore_command, score_files
from .submission import write_submission


def evaluate(generator, bench, data_root: str | None, output_dir: Path, batch_size: int, limit: int | None = None,
             max_new_tokens: int | None = None, progress: bool = True, image_aspect_ratio: str | None = None,
             overwrite: bool = False) -> dict:
    """Answer (or finish answering) one benchmark, then score it (or write its submission); the summary dict.

    The budget is `max_new_tokens` when given, else the entry's; the aspect ratio `image_aspect_ratio` when
    given, else the entry's own, else pad.
    """
    missing = missing_files(bench, data_root)
    if missing:
        raise FileNotFoundError(f"benchmark {bench.name}: missing {', '.join(map(str, missing))} "
                                f"(see its 'source' field: {bench.source or 'eval/benchmarks/' + bench.name + '.json'})")
    paths = bench.paths(data_root)
    if paths.annotation_file is None:  # server-scored: every question, as the server wants them all
        questions = load_questions(str(paths.question_file), limit=limit)
    else:
        joined = load_benchmark(paths.question_file, paths.annotation_file, bench.annotation_format, limit)
        questions = list(joined.questions.values())
    check_suffix(questions, bench.prompt_suffix, bench.suffix_in_text, paths.question_file)
    generator.image_folder = str(paths.image_folder) if paths.image_folder else None
    generator.max_new_tokens = max_new_tokens or bench.max_new_tokens
    generator.aspect = image_aspect_ratio or bench.image_aspect_ratio or generator.family.default_aspect_ratio
    answers = output_dir / bench.name / "answers.jsonl"
    generator.run(questions, answers, batch_size, bench.prompt_suffix, progress=progress,
                  suffix_in_text=bench.suffix_in_text, question_file=str(paths.question_file), overwrite=overwrite)
    if paths.annotation_file is None:
        upload = output_dir / bench.name / "submission.json"
        answered = write_submission(bench.submission, answers, paths.question_file, upload,
                                    paths.submission_question_file, allow_missing=bool(limit))
        return {"format": bench.submission, "file": str(upload), "answered": answered, "answers_file": str(answers)}
    args = dict(metric=bench.metric, result_file=answers, annotation_file=paths.annotation_file,
                question_file=paths.question_file, group_by=bench.group_by,
                annotation_format=bench.annotation_format, limit=limit)
    summary = score_files(**args)
    summary.update(answers_file=str(answers), rescore=rescore_command(**args))
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
    ap.add_argument("--image-aspect-ratio", default=None, choices=["pad", "square", "original"],
                    help="Override every benchmark's (default: the entry's own, else the model family's: pad for "
                         "LLaVA-1.5 as it was trained, original for anyres and Qwen2-VL).")
    ap.add_argument("--overwrite", action="store_true",
                    help="Start every answers file over instead of resuming it (needed when the run differs).")
    add_conv_mode_flag(ap)
    ap.add_argument("--no-progress", action="store_true")
    return ap


def main(argv=None) -> dict:
    import torch

    args = build_parser().parse_args(argv)
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    benches = get_benchmarks(args.benchmarks, args.benchmark_dir)  # fail on a typo before loading the model
    # The image folder, the token budget and the aspect ratio are set per benchmark in `evaluate`.
    generator = load_generator(args.model_path, args.model_base, args.device, args.dtype, model_id=args.model_id,
                               conv_mode=args.conv_mode)
    out = Path(args.output_dir)
    result = {"method": args.method or Path(args.model_path.rstrip("/")).name, "seed": args.seed,
              "model": args.model_path, "model_base": args.model_base, "scores": {}, "submissions": {}}
    for bench in benches:
        try:
            summary = evaluate(generator, bench, args.data_root, out, args.batch_size, args.limit,
                               args.max_new_tokens, not args.no_progress, args.image_aspect_ratio, args.overwrite)
        except AnswersMismatch as e:
            sys.exit(f"error: benchmark {bench.name}: {e}")
        if bench.submission:
            result["submissions"][bench.name] = summary
            print(f"{bench.name}: {summary['answered']} answers -> {summary['file']} (upload it to the server)")
        else:
            result["scores"][bench.name] = summary
            print(f"{bench.name}: {bench.metric} {summary['score']:.2f} (n={summary['n']})")
        write_json(out / "scores.json", result)  # after each benchmark, so a long run leaves partial results
    print(json.dumps({k: v["score"] for k, v in result["scores"].items()}))
    return result


if __name__ == "__main__":
    main()
