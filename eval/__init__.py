"""Evaluation: generation (eval.generate, eval.run), answer metrics (eval.metrics), scoring (eval.score),
the benchmark registry (eval.benchmarks + eval/benchmarks/*.json), JSONL helpers (eval.io) and result
tables (eval.tables). Submodules are imported on demand so that scoring never pays for torch."""
