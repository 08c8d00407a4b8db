"""Recipes: drivers that run training several times, or combine finished runs, above a single training run.

`--method individual` trains one LoRA per task; `--method merge_ta|merge_ties|merge_dare` merges such a run's
adapters without training. Each is one file with its own flags (like a method) plus one line in `registry.py`.
"""
