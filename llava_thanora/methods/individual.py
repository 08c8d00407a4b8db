"""`--method individual`: one plain LoRA per task, each trained on its own task only; and `--method merge_ta |
merge_ties | merge_dare`: those per-task adapters merged into one (no training).

individual
    `output_dir/<task>/` is the complete output of a `--method lora` run on that task's samples alone (adapter,
    `non_lora_trainables.safetensors`, processor, `trainer_state.json`); `output_dir/individual.json` lists
    `{task: subdir}`. Every task adapter has the same `--lora_r` as the multi-task rows (as in the paper: each
    deployed model has the same budget; the tasks together train T times as many values, pass `--lora_r r/T`
    for equal totals instead). Each adapter is evaluated on its own task's benchmark only, and the per-task
    results form one table row: `scripts/eval_individual.py` does both (`combine_scores` joins the results).
    `--resume_from_checkpoint true` skips finished tasks and resumes the others from their newest checkpoint.

merge_*
    `--merge_individual_dir DIR` names an individual run. Its adapters are combined by `merging.merge_adapters`
    (peft's `add_weighted_adapter`: ta = exact weighted sum, ties / dare = TIES / DARE-linear on the dense task
    vectors, refactored by SVD) with `--merge_weights`, `--merge_density`, `--merge_svd_rank`, and saved as an
    ordinary peft adapter relative to the original base. Trained projectors (and any other non-adapter
    tensors) cannot go through peft's merge: the merged one is their plain mean over the tasks, recorded in
    `merge.json`. Merging needs no DeepSpeed: run it as `python train.py`.
"""

from __future__ import annotations

import copy
import gc
import json
import logging
import re
from pathlib import Path

import torch
from safetensors.torch import load_file

from .base import NON_LORA_FILE, Method, save_non_lora

logger = logging.getLogger("llava_thanora")
MANIFEST = "individual.json"


class TaskSubset(torch.utils.data.Dataset):
    """The samples of one task of a multi-task dataset, in the dataset's order."""

    def __init__(self, dataset, task: str, indices: list[int]):
        self.dataset, self.indices, self.tasks = dataset, indices, [task]
        self.skipped = getattr(dataset, "skipped", None)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        return self.dataset[self.indices[i]]

    def task_indices(self) -> dict[str, list[int]]:
        return {self.tasks[0]: list(range(len(self.indices)))}


def read_individual(directory: str) -> dict[str, str]:
    """`{task: adapter dir}` of a `--method individual` output; errors name what is missing."""
    manifest = Path(directory) / MANIFEST
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: --merge_individual_dir must be the --output_dir of a finished "
                                f"--method individual run")
    tasks = json.loads(manifest.read_text())["tasks"]
    dirs = {task: str(Path(directory) / sub) for task, sub in tasks.items()}
    for task, path in dirs.items():
        if not (Path(path) / "adapter_config.json").is_file():
            raise FileNotFoundError(f"{manifest}: task {task!r}: {path} holds no adapter_config.json")
    return dirs


class IndividualMethod(Method):
    name = "individual"

    def run(self, parsed) -> dict[str, str]:
        """Train one LoRA per task, one after the other; returns `{task: output dir}`."""
        from transformers import set_seed

        from ..train.main import load_data, load_model, resolve_resume, train_one
        from .lora import LoRAMethod

        args = parsed.training
        resuming = resolve_flag(args.resume_from_checkpoint)
        set_seed(args.seed)
        model, processor = load_model(parsed)
        dataset, collator = load_data(parsed, processor)
        out, done = Path(args.output_dir), {}
        for task, indices in dataset.task_indices().items():
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", task):
                raise ValueError(f"task name {task!r} cannot be a folder name: use letters, digits, '.', '_', '-'")
            task_args = copy.copy(args)  # the same flags, another output dir
            task_args.output_dir, task_args.run_name = str(out / task), f"{args.run_name or out.name}-{task}"
            done[task] = task_args.output_dir
            if resuming and (out / task / "trainer_state.json").is_file():
                logger.info(f"individual: task {task} already finished in {task_args.output_dir}")
                continue
            has_checkpoint = resuming and any((out / task).glob("checkpoint-*"))
            resume = resolve_resume("true", task_args.output_dir) if has_checkpoint else None
            logger.info(f"individual: training task {task} on its {len(indices)} samples -> {task_args.output_dir}")
            set_seed(args.seed)  # every task as its own run with the same seed
            if model is None:
                model, _ = load_model(parsed)  # peft changed the previous task's base in place
            train_one(LoRAMethod(), model, processor, TaskSubset(dataset, task, indices), collator,
                      parsed._replace(training=task_args), resume)
            model = None
            _release_accelerator()
        if args.should_save:
            manifest = {"method": "individual", "base": parsed.model.model_name_or_path,
                        "lora_r": parsed.model.lora_r, "tasks": {task: task for task in done}}
            (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        return done


def _release_accelerator() -> None:
    """Let the next task's Trainer build its own Accelerator. accelerate keeps one global AcceleratorState per
    process and refuses a second DeepSpeed plugin; the process group (PartialState) is kept."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def resolve_flag(value: str | None) -> bool:
    """`--resume_from_checkpoint` for an individual run: true (per task) or nothing; a single path is ambiguous."""
    if value is None or value.lower() in ("", "false", "none"):
        return False
    if value.lower() == "true":
        return True
    raise ValueError(f"--method individual resumes every task from its own folder: pass --resume_from_checkpoint "
                     f"true, not a path ({value})")


def mean_non_lora(adapter_dirs: dict[str, str]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the tasks' `non_lora_trainables.safetensors` (e.g. projectors)."""
    loaded = {task: load_file(str(Path(path) / NON_LORA_FILE)) for task, path in adapter_dirs.items()}
    first_task, first = next(iter(loaded.items()))
    for task, tensors in loaded.items():
        if tensors.keys() != first.keys():
            raise ValueError(f"task {task!r} trained other non-adapter tensors than task {first_task!r}: "
                             f"{sorted(tensors.keys() ^ first.keys())[:3]}")
    return {k: torch.stack([t[k].float() for t in loaded.values()]).mean(0).to(v.dtype) for k, v in first.items()}


class MergeMethod(Method):
    """Base of merge_ta / merge_ties / merge_dare: `combination` is a `merging.merge_adapters` kind."""

    combination = "ta"

    def run(self, parsed):
        """Merge the adapters of `--merge_individual_dir` and save the result into `--output_dir`."""
        from transformers import set_seed

        from ..train.main import load_model
        from .merging import merge_adapters, save_merged_adapter

        b, args = parsed.baselines, parsed.training
        if not b.merge_individual_dir:
            raise ValueError(f"--method {self.name} needs --merge_individual_dir: the --output_dir of a --method "
                             f"individual run")
        adapters = read_individual(b.merge_individual_dir)
        weights = [float(w) for w in b.merge_weights.split(",")] if b.merge_weights else None
        set_seed(args.seed)  # DARE drops entries at random
        model, processor = load_model(parsed)
        if any(hasattr(p, "ds_id") for p in model.parameters()):
            raise ValueError(f"--method {self.name} trains nothing: run it as `python train.py`, without --deepspeed")
        merged = merge_adapters(model.to(args.device), adapters, self.combination, weights, b.merge_density,
                                b.merge_svd_rank)
        if args.should_save:
            out = Path(args.output_dir)
            save_merged_adapter(merged, out)
            save_non_lora(str(out), mean_non_lora(adapters))
            processor.save_pretrained(str(out))
            record = {"method": self.name, "combination": self.combination, "tasks": list(adapters),
                      "weights": weights or [1.0] * len(adapters), "density": b.merge_density,
                      "svd_rank": b.merge_svd_rank, "individual_dir": b.merge_individual_dir,
                      "non_lora_trainables": "mean over the tasks"}
            (out / "merge.json").write_text(json.dumps(record, indent=2) + "\n")
            logger.info(f"{self.name}: merged {list(adapters)} into {out}")
        return merged


class MergeTAMethod(MergeMethod):
    name, combination = "merge_ta", "ta"


class MergeTIESMethod(MergeMethod):
    name, combination = "merge_ties", "ties"


class MergeDAREMethod(MergeMethod):
    name, combination = "merge_dare", "dare_linear"


def combine_scores(files: list[str], method: str = "individual") -> dict:
    """One `eval.run` result from the per-task results of an individual run (each scored on its own task)."""
    combined = {"method": method, "seed": None, "model": [], "scores": {}}
    for i, path in enumerate(files):
        result = json.loads(Path(path).read_text())
        if i and result.get("seed") != combined["seed"]:
            raise ValueError(f"{path}: seed {result.get('seed')} differs from {files[0]}'s {combined['seed']}")
        combined["seed"] = result.get("seed")
        combined["model"].append(result.get("model"))
        for bench, score in result["scores"].items():
            if bench in combined["scores"]:
                raise ValueError(f"{path}: benchmark {bench} was already scored by another task's adapter")
            combined["scores"][bench] = score
    return combined
