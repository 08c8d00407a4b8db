"""Command-line arguments, LLaVA-style: model / data dataclasses, every method's own flags, HF `TrainingArguments`.

Every field is a flag (`--lora_r 128`), parsed by `transformers.HfArgumentParser`; every standard
`TrainingArguments` flag works as well. The methods' flag classes come from the caller (each method and recipe
declares its own, see `llava_thanora/methods/base.py`), so this file never changes when a method is added.

LLaVA's own flags (those of its `scripts/v1_5/finetune_task_lora.sh` and `finetune_lora.sh`) are accepted too:
those that select something (`--lora_enable`, `--version`, `--tune_mm_mlp_adapter`, `--freeze_mm_mlp_adapter`,
`--warmup_ratio`, `--evaluation_strategy`, ...) are resolved to ours here; those that describe the architecture
are checked against the checkpoint when it is loaded (`model.original.check_architecture_flags`); values we do not
support are errors, never ignored.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
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
    """Train the multimodal projector: the default of every LoRA-family method already (as in LLaVA); the flag is
    kept for older commands, and contradicting --freeze_mm_mlp_adapter is an error."""
    freeze_mm_mlp_adapter: bool = False
    """LLaVA's flag: keep the projector frozen (by default it trains in LoRA-family runs, as in LLaVA, whose
    initialize_vision_modules turns it back on after LoRA froze it)."""
    mm_projector_lr: float | None = None
    """Learning rate of the projector (default: --learning_rate); an error when the projector is frozen."""
    pretrain_mm_mlp_adapter: str | None = None
    """A projector to start from: LLaVA's mm_projector.bin (keys ...mm_projector.0/2.*) or a .safetensors with
    either those keys or llava-hf's multi_modal_projector.linear_1/2.*; every projector weight must be in it."""
    lora_enable: bool | None = None
    """LLaVA's flag: True = --method lora (or any LoRA-family --method), False = --method full (LLaVA's full
    fine-tuning; --method projector with --tune_mm_mlp_adapter)."""
    tune_mm_mlp_adapter: bool = False
    """LLaVA's flag: train the projector only (its pre-training stage) = --method projector."""
    lora_bias: str = "none"
    """LLaVA's flag; only none (no bias is trained) is supported."""
    bits: int = 16
    """LLaVA's flag; only 16 (no quantization: the weights' dtype is --torch_dtype / --bf16 / --fp16)."""
    version: str | None = None
    """LLaVA's conversation version: v1 (= vicuna_v1) selects --conv_mode llava_v1; other versions are errors."""
    vision_tower: str | None = None
    """LLaVA's flag, accepted as its scripts pass it: a llava-hf checkpoint holds its own vision tower, which is
    the one used (the log names it); nothing is loaded from this name."""
    mm_projector_type: str | None = None
    """LLaVA's flag, checked against the checkpoint: llava-hf projectors are mlp2x_<its activation>."""
    mm_vision_select_layer: int | None = None
    """LLaVA's flag, checked against the checkpoint's vision_feature_layer."""
    mm_vision_select_feature: str | None = None
    """LLaVA's flag, checked against the checkpoint: patch (vision_feature_select_strategy default) or cls_patch
    (full)."""
    mm_use_im_start_end: bool | None = None
    """LLaVA's flag, checked: llava-hf checkpoints have no image start/end tokens, so only False agrees."""
    mm_use_im_patch_token: bool | None = None
    """LLaVA's flag, checked: llava-hf checkpoints have no image patch token, so only False agrees."""
    mm_patch_merge_type: str | None = None
    """LLaVA's flag, checked: LLaVA-1.5 checkpoints are flat."""
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
    image_aspect_ratio: str | None = None
    """pad (LLaVA-1.5's training setting: pad to a square in the mean colour, then the processor's resize and
    centre crop), square (LLaVA's default: the processor's resize and centre crop only) or original (the same as
    square). Default: the model family's (pad for LLaVA-1.5; original for the anyres and dynamic-resolution
    families, whose processors keep the aspect ratio)."""
    image_min_pixels: int | None = None
    """Qwen2-VL / Qwen2.5-VL: the fewest pixels an image is resized to (its processor's min_pixels); saved with the
    output's processor, so evaluation uses the same bounds."""
    image_max_pixels: int | None = None
    """Qwen2-VL / Qwen2.5-VL: the most pixels an image is resized to (max_pixels; bounds its image tokens)."""
    skip_bad_samples: bool = False
    """Drop (found before training) or replace (found when drawn) bad samples, count and report them, instead of
    stopping with an error."""
    max_train_samples: int | None = None
    """Use only the first N samples of each data file (quick runs)."""
    data_cache_dir: str | None = None
    """Where the parsed (Arrow) copies of the data files go; default $XDG_CACHE_HOME or ~/.cache, then
    llava_thanora/data."""
    lazy_preprocess: bool | None = None
    """LLaVA's flag: data is always prepared lazily here (tokenized and decoded when drawn), so only True agrees."""

    def __post_init__(self):
        if self.image_aspect_ratio is not None and self.image_aspect_ratio not in ASPECT_RATIOS:
            raise ValueError(f"--image_aspect_ratio {self.image_aspect_ratio!r}: choose one of {ASPECT_RATIOS}")
        if self.lazy_preprocess is False:
            raise ValueError("--lazy_preprocess False: data is always prepared lazily here (as LLaVA's own "
                             "LazySupervisedDataset does); pass True or leave it out")


ASPECT_RATIOS = ("pad", "square", "original")
LLAVA_V1_VERSIONS = ("v1", "vicuna_v1")  # LLaVA's names of conv_vicuna_v1, which --conv_mode llava_v1 reproduces


@dataclass
class TrainingArguments(transformers.TrainingArguments):
    model_max_length: int = field(default=2048, metadata={"help": "Longest sample (image tokens included); longer samples are errors."})
    group_by_modality_length: bool = field(default=False, metadata={"help": "LLaVA's sampler: batches of image samples and batches of text-only samples, each grouped by length (lengths estimated without tokenizing)."})
    warmup_ratio: float | None = field(default=None, metadata={"help": "LLaVA's (transformers 4's) flag: the warmup as a fraction of the steps; the same as --warmup_steps with a value below 1."})
    evaluation_strategy: str | None = field(default=None, metadata={"help": "LLaVA's (transformers 4's) name of --eval_strategy; only no (evaluate with eval.run after training)."})
    cpu_distributed_fixes: bool = field(default=True, metadata={"help": "Apply the DeepSpeed-on-CPU (gloo) fixes when no GPU is present."})
    accelerate_state_configured: bool = field(default=False, metadata={"help": argparse.SUPPRESS})
    # Defaults differ from HF's where LLaVA users expect otherwise.
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep all collated fields."})

    def __post_init__(self):
        self._llava_flags()
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

    def _llava_flags(self) -> None:
        """LLaVA's (transformers 4) spellings, resolved to transformers 5's before its own checks run."""
        if self.warmup_ratio is not None:
            if self.warmup_steps:
                raise ValueError(f"--warmup_ratio {self.warmup_ratio} and --warmup_steps {self.warmup_steps}: give one")
            if not 0 <= self.warmup_ratio < 1:
                raise ValueError(f"--warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
            self.warmup_steps = self.warmup_ratio
        if self.evaluation_strategy is not None:
            if str(self.evaluation_strategy) != "no":
                raise ValueError(f"--evaluation_strategy {self.evaluation_strategy}: training has no evaluation set "
                                 "here; evaluate the output with eval.run (only 'no' is accepted)")
            self.evaluation_strategy = None
        if self.group_by_modality_length and self.train_sampling_strategy != "random":
            raise ValueError(f"--group_by_modality_length and --train_sampling_strategy "
                             f"{self.train_sampling_strategy} choose two samplers; give one")
        if self.bf16 and not self.use_cpu and self.cpu_distributed_fixes and not torch.cuda.is_available():
            # transformers refuses --bf16 without a GPU unless --use_cpu; on a CPU-only machine that is the device.
            self.use_cpu = True
        if self.tf32 and not transformers.utils.is_torch_tf32_available():
            # LLaVA's scripts pass --tf32 True; a device without TF32 matmuls (a CPU) cannot honour it either way.
            logging.getLogger("llava_thanora").warning("--tf32 True: this device has no TF32 mode; running without")
            self.tf32 = None


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
    given = _given(argv)
    if model.method not in methods:
        raise ValueError(f"unknown --method {model.method!r}; choose one of {', '.join(sorted(methods))}")
    _resolve_llava_flags(model, data, given, methods)
    selected = methods[model.method].arguments
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


def _resolve_llava_flags(model: ModelArguments, data: DataArguments, given: set[str],
                         methods: Mapping[str, type]) -> None:
    """LLaVA's selecting flags to ours (in place), with an error for every contradiction or unsupported value."""
    from ..methods.full import ProjectorMethod

    explicit = "--method" in given
    if model.tune_mm_mlp_adapter:
        wanted, flag = "projector", "--tune_mm_mlp_adapter True"
        if model.lora_enable:
            raise ValueError("--tune_mm_mlp_adapter True trains the projector alone; it contradicts --lora_enable True")
    elif model.lora_enable is not None:
        wanted, flag = ("lora" if model.lora_enable else "full"), f"--lora_enable {model.lora_enable}"
    else:
        wanted = flag = None
    if wanted and not explicit:
        model.method = wanted
    elif wanted:
        trains_everything = issubclass(methods[model.method], ProjectorMethod)
        agrees = (model.method == "projector" if wanted == "projector"
                  else not trains_everything if wanted == "lora" else trains_everything)
        if not agrees:
            raise ValueError(f"{flag} selects --method {wanted}, which contradicts --method {model.method}")
    if model.lora_bias != "none":
        raise ValueError(f"--lora_bias {model.lora_bias}: only none is supported (LLaVA's scripts use none)")
    if model.bits != 16:
        raise ValueError(f"--bits {model.bits}: quantized (QLoRA) training is not supported; only --bits 16")
    if model.freeze_mm_mlp_adapter and (model.tune_mm_projector or model.tune_mm_mlp_adapter):
        raise ValueError("--freeze_mm_mlp_adapter contradicts --tune_mm_projector / --tune_mm_mlp_adapter")
    if model.freeze_mm_mlp_adapter and model.method == "projector":
        raise ValueError("--freeze_mm_mlp_adapter with --method projector leaves nothing to train")
    if model.freeze_mm_mlp_adapter and model.mm_projector_lr is not None:
        raise ValueError(f"--mm_projector_lr {model.mm_projector_lr} has no effect with --freeze_mm_mlp_adapter "
                         "(the projector does not train); remove one")
    if model.version is not None:
        if model.version not in LLAVA_V1_VERSIONS:
            raise ValueError(f"--version {model.version}: only LLaVA-1.5's {' / '.join(LLAVA_V1_VERSIONS)} "
                             "(= --conv_mode llava_v1) is supported; or use --conv_mode template")
        if "--conv_mode" in given and data.conv_mode != "llava_v1":
            raise ValueError(f"--version {model.version} selects --conv_mode llava_v1, which contradicts "
                             f"--conv_mode {data.conv_mode}")
        data.conv_mode = "llava_v1"
