"""Evaluation: generation (eval.generate, eval.run) with answers that record what produced them (eval.answers),
question and annotation files including LLaVA-1.5's eval.zip files (eval.formats), answer metrics
(eval.metrics), scoring (eval.score), server upload files (eval.submission), the benchmark registry
(eval.benchmarks + eval/benchmarks/*.json), JSONL helpers (eval.io) and result tables (eval.tables). Submodules
are imported on demand so that scoring never pays for torch."""
