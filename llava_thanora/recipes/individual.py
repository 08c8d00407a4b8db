"""`--method individual`: one plain LoRA per task, each trained on its own task only.

`output_dir/<task>/` is the complete output of a `--method lora` run on that task's samples alone (adapter,
`non_lora_trainables.safetensors`, processor, `trainer_state.json`); `output_dir/individual.json` lists
`{task: subdir}`. Every task adapter has the same `--lora_r` as the multi-task rows (as in the paper: each
deployed model has the same budget; the tasks together train T times as many values, pass `--lora_r r/T` for
equal totals instead). Every task sees its samples as often as the multi-task rows see them: with
`--num_train_epochs` each run makes those epochs over its own task; with `--max_steps S` task t gets
round(S * n_t / N) steps (n_t of the N samples), so the T runs together take the multi-task run's S steps rather
than T * S of them (which would give each task T times the training of the rows it is compared with). Each
adapter is evaluated on its own task's benchmark only, and the per-task results form one table row:
`scripts/eval_individual.py` does both (`eval.tables.combine_scores` joins the results).
`--resume_from_checkpoint true` skips finished tasks and resumes the others from their newest checkpoint.
"""

from __future__ import annotations

import copy
import gc
import json
import logging
import re
from pathlib import Path

import torch

from ..methods.loading import INDIVIDUAL_MANIFEST
from ..train.main import load_data, load_model, parse_resume, resolve_resume, train_one
from .base import Recipe

logger = logging.getLogger("llava_thanora")


class TaskSubset(torch.utils.data.Dataset):
    """The samples of one task of a multi-task dataset, in the dataset's order."""

    def __init__(self, dataset, task: str, indices: list[int]):
        self.dataset, self.indices, self.tasks = dataset, indices, [task]
        self.skipped, self.format = dataset.skipped, dataset.format

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        return self.dataset[self.indices[i]]

    def task_indices(self) -> dict[str, list[int]]:
        return {self.tasks[0]: list(range(len(self.indices)))}


def read_individual(directory: str) -> dict[str, str]:
    """`{task: adapter dir}` of a `--method individual` output; errors name what is missing."""
    manifest = Path(directory) / INDIVIDUAL_MANIFEST
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: --merge_individual_dir must be the --output_dir of a finished "
                                f"--method individual run")
    tasks = json.loads(manifest.read_text())["tasks"]
    dirs = {task: str(Path(directory) / sub) for task, sub in tasks.items()}
    for task, path in dirs.items():
        if not (Path(path) / "adapter_config.json").is_file():
            raise FileNotFoundError(f"{manifest}: task {task!r}: {path} holds no adapter_config.json")
    return dirs


def _release_accelerator() -> None:
    """Let the next task's Trainer build its own Accelerator. accelerate keeps one global AcceleratorState per
    process and refuses a second DeepSpeed plugin; the process group (PartialState) is kept."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class IndividualRecipe(Recipe):
    name = "individual"

    def run(self, parsed, methods) -> dict[str, str]:
        """Train one LoRA per task, one after the other; returns `{task: output dir}`."""
        from transformers import set_seed

        args = parsed.training
        resuming = parse_resume(args.resume_from_checkpoint)
        if isinstance(resuming, str):
            raise ValueError(f"--method individual resumes every task from its own folder: pass "
                             f"--resume_from_checkpoint true, not a path ({resuming})")
        lora = methods["lora"]
        set_seed(args.seed)
        model, processor = load_model(parsed)
        dataset, collator = load_data(parsed, processor)
        out, done, steps = Path(args.output_dir), {}, {}
        for task, indices in dataset.task_indices().items():
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", task):
                raise ValueError(f"task name {task!r} cannot be a folder name: use letters, digits, '.', '_', '-'")
            task_args = copy.copy(args)  # the same flags, another output dir
            task_args.output_dir, task_args.run_name = str(out / task), f"{args.run_name or out.name}-{task}"
            if args.max_steps > 0:  # the task's share of the multi-task run's steps (see the module docstring)
                task_args.max_steps = max(1, round(args.max_steps * len(indices) / len(dataset)))
                steps[task] = task_args.max_steps
            done[task] = task_args.output_dir
            if resuming and (out / task / "trainer_state.json").is_file():
                logger.info(f"individual: task {task} already finished in {task_args.output_dir}")
                continue
            has_checkpoint = resuming and any((out / task).glob("checkpoint-*"))
            resume = resolve_resume("true", task_args.output_dir) if has_checkpoint else None
            logger.info(f"individual: training task {task} on its {len(indices)} samples"
                        f"{f' for {task_args.max_steps} steps' if task in steps else ''} -> {task_args.output_dir}")
            set_seed(args.seed)  # every task as its own run with the same seed
            if model is None:
                model, _ = load_model(parsed)  # peft changed the previous task's base in place
            train_one(lora(), model, processor, TaskSubset(dataset, task, indices), collator,
                      parsed._replace(training=task_args), resume)
            model = None
            _release_accelerator()
        if args.should_save:
            manifest = {"method": "individual", "base": parsed.model.model_name_or_path,
                        "lora_r": parsed.model.lora_r, "tasks": {task: task for task in done},
                        "max_steps": steps or None}
            (out / INDIVIDUAL_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        return done
