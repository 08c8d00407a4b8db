"""Command-line arguments, LLaVA-style: model / data dataclasses, every method's own flags, HF `TrainingArguments`.

Every field is a flag (`--lora_r 128`), parsed by `transformers.HfArgumentParser`; every standard
`TrainingArguments` flag works as well. The methods' flag classes come from the caller (each method and recipe
declares its own, see `llava_thanora/methods/base.py`), so this file never changes when a method is added.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import transformers

from ..flags import documented


@documented
class ModelArguments:
    model_name_or_path: str
    """A llava-hf checkpoint (e.g. llava-hf/llava-1.5-7b-hf) or a local dir."""
    method: str = "lora"
    """What to train (`--help` lists every registered method and recipe)."""
    lora_r: int = 128
    """LoRA rank (total rank per adapted layer; ThanoRA splits it into subspaces)."""
    lora_alpha: float = 256
    """LoRA alpha; the update is scaled by alpha / r (alpha / sqrt(r) with --use_rslora)."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA input."""
    use_rslora: bool = False
    """Rank-stabilized LoRA (peft's use_rslora): scale the update by alpha / sqrt(r) instead of alpha / r."""
    lora_target_modules: str | None = None
    """Comma-separated module-name suffixes to adapt (default: every nn.Linear of the language model; never the
    vision tower, projector or lm_head)."""
    tune_mm_projector: bool = False
    """Also train the multimodal projector."""
    mm_projector_lr: float | None = None
    """Learning rate of the projector (default: --learning_rate)."""
    attn_implementation: str | None = None
    """flash_attention_2, sdpa or eager (default: flash_attention_2 when CUDA and flash-attn are present, else
    sdpa)."""
    torch_dtype: str = "auto"
    """Weights dtype: auto (bf16/fp16 from the training flags, else fp32), float32, bfloat16, float16."""


@documented
class DataArguments:
    data_path: str
    """LLaVA JSON/JSONL file(s), comma-separated for a multi-task mixture; the task is the sample's 'task' field or
    the file stem."""
    image_folder: str | None = None
    """Root that 'image' paths are relative to."""
    conv_mode: str = "template"
    """Conversation format: template (the checkpoint's own chat template) or llava_v1 (LLaVA-1.5's vicuna_v1, with
    its system text: what llava-v1.5 was tuned and evaluated with). Recorded in the output's prompt_format.json,
    which eval.* follows by default."""
    image_aspect_ratio: str = "pad"
    """pad (LLaVA-1.5: pad to square in the mean colour) or original."""
    skip_bad_samples: bool = False
    """Drop and count bad samples instead of stopping with an error."""
    data_num_proc: int | None = None
    """Processes for the one-off tokenization/validation pass."""
    max_train_samples: int | None = None
    """Use only the first N samples of each data file (quick runs)."""


@dataclass
class TrainingArguments(transformers.TrainingArguments):
    model_max_length: int = field(default=2048, metadata={"help": "Longest sample (image tokens included); longer samples are errors."})
    cpu_distributed_fixes: bool = field(default=True, metadata={"help": "Apply the DeepSpeed-on-CPU (gloo) fixes when no GPU is present."})
    accelerate_state_configured: bool = field(default=False, metadata={"help": argparse.SUPPRESS})
    # Defaults differ from HF's where LLaVA users expect otherwise.
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep all collated fields."})

    def __post_init__(self):
        if self.accelerate_state_configured:
            # `prepare_cpu_launch` created a gloo PartialState: accelerate must use it rather than build its own
            # (which would report world size 1 under a CPU DeepSpeed launch). Set by `parse_args`, not by users.
            config = self.accelerator_config or {}
            if isinstance(config, str):
                with open(config) as f:
                    config = json.load(f)
            self.accelerator_config = {**dict(config), "use_configured_state": True}
        if self.gradient_checkpointing and not self.gradient_checkpointing_kwargs:
            # Non-reentrant checkpointing keeps the autograd graph of hooks (ThanoRA's penalty) intact.
            self.gradient_checkpointing_kwargs = {"use_reentrant": False}
        super().__post_init__()


class ParsedArgs(NamedTuple):
    """Every flag: the shared groups, and the selected method's own flags object."""

    model: ModelArguments
    data: DataArguments
    training: TrainingArguments
    method: Any
    """The selected method's (or recipe's) `arguments` instance; None when it has no flags."""


def _flags_of(arguments: type) -> set[str]:
    """The option strings HfArgumentParser makes for a dataclass (bool fields defaulting to True also get --no_X)."""
    out = set()
    for f in dataclasses.fields(arguments):
        out.add(f"--{f.name}")
        if f.default is True:
            out.add(f"--no_{f.name}")
    return out


def _given(argv: Sequence[str]) -> set[str]:
    """The flags on the command line, spelled with underscores (HfArgumentParser also accepts --dash-names)."""
    return {"--" + a[2:].split("=", 1)[0].replace("-", "_") for a in argv if a.startswith("--")}


def parse_args(argv: Sequence[str], methods: Mapping[str, type], launch: Any = None) -> ParsedArgs:
    """Parse the command line; `methods` maps each `--method` name to its class (with its `arguments`).

    Errors: an unknown method, and flags that belong to another method than the selected one (they would have no
    effect). `launch` is `prepare_cpu_launch`'s result: when it configured a process state, the TrainingArguments
    are told to use it.
    """
    owned = list(dict.fromkeys(c.arguments for c in methods.values() if c.arguments is not None))
    parser = transformers.HfArgumentParser([ModelArguments, DataArguments, TrainingArguments, *owned])
    for action in parser._actions:
        if action.dest == "method":
            action.help = f"What to train: {', '.join(sorted(methods))} (default: lora)."
    if launch is not None:
        parser.set_defaults(accelerate_state_configured=True)
    model, data, training, *groups = parser.parse_args_into_dataclasses(args=list(argv))
    if model.method not in methods:
        raise ValueError(f"unknown --method {model.method!r}; choose one of {', '.join(sorted(methods))}")
    selected = methods[model.method].arguments
    given = _given(argv)
    for arguments in owned:
        if arguments is selected:
            continue
        stray = sorted(given & _flags_of(arguments))
        if stray:
            owners = sorted(name for name, c in methods.items() if c.arguments is arguments)
            raise ValueError(f"{', '.join(stray)}: a flag of --method {'/'.join(owners)}, which has no effect with "
                             f"--method {model.method}; remove it")
    chosen = next((g for g in groups if type(g) is selected), None)
    return ParsedArgs(model, data, training, chosen)
