"""Converters from published `datasets` datasets to LLaVA training JSON and eval question / annotation files.

Run from the repository root, one split at a time, e.g.::

    python -m scripts.prepare_data.textvqa --split validation     # lmms-lab/textvqa -> playground/data/eval

See `common` for the output layout and the flags every converter takes; each module's docstring names its
source dataset, the columns it reads and how it builds questions and answers.
"""
