"""Command-line arguments, LLaVA-style: model / data / method dataclasses plus HF `TrainingArguments`.

Every field is a flag (`--lora_r 128`), parsed by `transformers.HfArgumentParser`; every standard
`TrainingArguments` flag works as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import transformers


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "A llava-hf checkpoint (e.g. llava-hf/llava-1.5-7b-hf) or a local dir."})
    method: str = field(
        default="lora",
        metadata={"help": "What to train: lora, dora, pissa, corda, thanora, moelora (one adapter on the mixture); "
                          "individual (one LoRA per task); merge_ta, merge_ties, merge_dare (merge an individual run, "
                          "no training); projector, full (LLaVA pre-training stages 1 and 2)."},
    )
    lora_r: int = field(default=128, metadata={"help": "LoRA rank (total rank per adapted layer; ThanoRA splits it into subspaces)."})
    lora_alpha: float = field(default=256, metadata={"help": "LoRA alpha; the update is scaled by alpha / r."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: str | None = field(
        default=None,
        metadata={"help": "Comma-separated module-name suffixes to adapt (default: every nn.Linear of the language "
                          "model; never the vision tower, projector or lm_head)."},
    )
    tune_mm_projector: bool = field(default=False, metadata={"help": "Also train the multimodal projector."})
    tune_vision_tower: bool = field(default=False, metadata={"help": "--method full only: train the vision tower too (for a base whose tower is random, like the tiny demo base)."})
    mm_projector_lr: float | None = field(default=None, metadata={"help": "Learning rate of the projector (default: --learning_rate)."})
    attn_implementation: str | None = field(
        default=None, metadata={"help": "flash_attention_2, sdpa or eager (default: flash_attention_2 when CUDA and flash-attn are present, else sdpa)."}
    )
    torch_dtype: str = field(default="auto", metadata={"help": "Weights dtype: auto (bf16/fp16 from the training flags, else fp32), float32, bfloat16, float16."})


@dataclass
class DataArguments:
    data_path: str = field(metadata={"help": "LLaVA JSON/JSONL file(s), comma-separated for a multi-task mixture; the task is the sample's 'task' field or the file stem."})
    image_folder: str | None = field(default=None, metadata={"help": "Root that 'image' paths are relative to."})
    image_aspect_ratio: str = field(default="pad", metadata={"help": "pad (LLaVA-1.5: pad to square in the mean colour) or original."})
    skip_bad_samples: bool = field(default=False, metadata={"help": "Drop and count bad samples instead of stopping with an error."})
    data_num_proc: int | None = field(default=None, metadata={"help": "Processes for the one-off tokenization/validation pass."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N samples of each data file (quick runs)."})


@dataclass
class ThanoRAArguments:
    thanora_tau: float = field(default=0.1, metadata={"help": "Softmax temperature of the rank shares; larger is more uniform."})
    thanora_lambda: float = field(default=0.1, metadata={"help": "Weight of the subspace-preserving penalty (0 disables it)."})
    thanora_gamma: float = field(default=1.0, metadata={"help": "Magnitude factor of the context-oriented task blocks."})
    thanora_r_coop: int = field(default=-1, metadata={"help": "Rank of the shared cooperative block (-1: floor(r/(T+1)))."})
    thanora_r_min: int = field(default=1, metadata={"help": "Minimum rank of each task block."})
    thanora_preview_samples: int = field(default=500, metadata={"help": "Per-task samples for the initialization statistics."})
    thanora_penalty: str = field(default="AB", metadata={"help": "Penalty side: A, B or AB."})
    thanora_init: str = field(default="activation", metadata={"help": "Task block init: activation (default, chosen on minimix validation: BENCHMARKS.md), context or random."})
    thanora_allocation: str = field(default="entropy", metadata={"help": "Rank allocation: entropy or uniform."})
    thanora_cov_budget_mb: float = field(default=4096, metadata={"help": "Memory budget for covariance statistics; layers are processed in groups to stay under it."})
    thanora_preview_batch_size: int = field(default=4, metadata={"help": "Batch size of the preview forward passes."})


@dataclass
class MoELoRAArguments:
    moelora_num_experts: int = field(default=4, metadata={"help": "B heads per layer (HydraLoRA-style, shared A)."})
    moelora_balance_coef: float = field(default=0.01, metadata={"help": "Weight of the router load-balancing loss."})
    moelora_r: int = field(default=0, metadata={"help": "Rank of the shared A and of each B head; 0: the rank whose trainable parameter count is closest to a --lora_r LoRA on the same layers (same budget)."})


@dataclass
class BaselineArguments:
    """Flags of the PiSSA / CorDA initializations and of the merge_* methods."""

    pissa_niter: int = field(default=0, metadata={"help": "--method pissa: 0 = exact SVD of every adapted weight; K > 0 = peft's randomized SVD with K subspace iterations (pissa_niter_K, much faster on large models)."})
    corda_method: str = field(default="ipm", metadata={"help": "--method corda: ipm (instruction-previewed: the top context-oriented components) or kpm (knowledge-preserved: the bottom ones). The preview uses the first --thanora_preview_samples training samples of each task, as ThanoRA does."})
    merge_individual_dir: str | None = field(default=None, metadata={"help": "--method merge_*: the --output_dir of a --method individual run (holds individual.json)."})
    merge_weights: str | None = field(default=None, metadata={"help": "--method merge_*: comma-separated weight per task, in individual.json order (default 1 each: a plain sum)."})
    merge_density: float = field(default=0.5, metadata={"help": "--method merge_ties / merge_dare: fraction of each task vector kept (TIES: largest magnitudes; DARE: random)."})
    merge_svd_rank: int | None = field(default=None, metadata={"help": "--method merge_ties / merge_dare: rank of the merged adapter (default: sum of the task ranks)."})


@dataclass
class TrainingArguments(transformers.TrainingArguments):
    model_max_length: int = field(default=2048, metadata={"help": "Longest sample (image tokens included); longer samples are errors."})
    cpu_distributed_fixes: bool = field(default=True, metadata={"help": "Apply the DeepSpeed-on-CPU (gloo) fixes when no GPU is present."})
    # Defaults differ from HF's where LLaVA users expect otherwise.
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep all collated fields."})

    def __post_init__(self):
        # When `apply_cpu_fixes` configured a gloo state, accelerate must use it rather than build its own
        # (which would report world size 1 under a CPU DeepSpeed launch).
        from accelerate.state import PartialState

        if self.cpu_distributed_fixes and PartialState._shared_state:
            config = self.accelerator_config or {}
            if isinstance(config, str):
                import json

                with open(config) as f:
                    config = json.load(f)
            self.accelerator_config = {**dict(config), "use_configured_state": True}
        if self.gradient_checkpointing and not self.gradient_checkpointing_kwargs:
            # Non-reentrant checkpointing keeps the autograd graph of hooks (ThanoRA's penalty) intact.
            self.gradient_checkpointing_kwargs = {"use_reentrant": False}
        super().__post_init__()


ARGUMENT_CLASSES = (ModelArguments, DataArguments, ThanoRAArguments, MoELoRAArguments, BaselineArguments,
                    TrainingArguments)


class ParsedArgs(NamedTuple):
    """Every flag, one dataclass per group (in `ARGUMENT_CLASSES` order)."""

    model: ModelArguments
    data: DataArguments
    thanora: ThanoRAArguments
    moelora: MoELoRAArguments
    baselines: BaselineArguments
    training: TrainingArguments

    def method_args(self) -> dict:
        """The method-specific groups by name, as `BuildContext.method_args` holds them."""
        return {"thanora": self.thanora, "moelora": self.moelora, "baselines": self.baselines}


def parse_args(argv: list[str] | None = None) -> ParsedArgs:
    """Parse the command line into the argument groups."""
    parser = transformers.HfArgumentParser(ARGUMENT_CLASSES)
    return ParsedArgs(*parser.parse_args_into_dataclasses(args=argv))
