"""One training run: load the base, build the data, wrap the model with the method, train, save.

`load_model`, `load_data` and `train_one` are the steps; `run` chains them for one method. Recipes that train
several times (`llava_thanora/recipes/`) call the same steps. The command line itself is `llava_thanora.cli`.
"""

from __future__ import annotations

import logging
import os

from ..distributed import full_numel, held_numel, is_partitioned

logger = logging.getLogger("llava_thanora")


def parse_resume(value: str | None) -> bool | str | None:
    """`--resume_from_checkpoint`: None (absent, "false", "none"), True ("true": the newest `checkpoint-*` of the
    output dir) or the checkpoint folder given."""
    if value is None or value.lower() in ("", "false", "none"):
        return None
    return True if value.lower() == "true" else value


def resolve_resume(value: str | None, output_dir: str) -> str | None:
    """The checkpoint folder to resume from, or None; errors when the one asked for does not exist."""
    wanted = parse_resume(value)
    if wanted is True:
        from transformers.trainer_utils import get_last_checkpoint

        found = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
        if found is None:
            raise FileNotFoundError(f"--resume_from_checkpoint true: no checkpoint-* folder in {output_dir}")
        return found
    if wanted is not None and not os.path.isdir(wanted):
        raise FileNotFoundError(f"--resume_from_checkpoint {wanted}: no such checkpoint folder")
    return wanted


def _log_parameters(model, method_name: str) -> None:
    """Trainable count, and under ZeRO-3 how much of the model this rank really holds (proof of partitioning)."""
    n_train = sum(full_numel(p) for p in model.parameters() if p.requires_grad)
    logger.info(f"method {method_name}: {n_train:,} trainable parameters")
    sharded = [p for p in model.parameters() if is_partitioned(p)]
    if sharded:
        held, total = sum(held_numel(p) for p in sharded), sum(full_numel(p) for p in sharded)
        logger.warning(f"ZeRO-3 partitioning: this rank holds {held:,} of {total:,} base-model elements")


def load_data(parsed, processor):
    """(dataset, collator) of `--data_path`, tokenized once (the main process first, the others read its cache)."""
    from ..data.conversation import PromptFormat
    from ..data.dataset import Collator, DataConfig, SupervisedDataset

    data_args, args = parsed.data, parsed.training
    data_cfg = DataConfig(
        data_paths=[p for p in data_args.data_path.split(",") if p], image_folder=data_args.image_folder,
        model_max_length=args.model_max_length, image_aspect_ratio=data_args.image_aspect_ratio,
        skip_bad_samples=data_args.skip_bad_samples, num_proc=data_args.data_num_proc,
        max_samples=data_args.max_train_samples,
    )
    with args.main_process_first(desc="tokenizing the training data"):
        prompt_format = PromptFormat.from_processor(processor, data_args.conv_mode)
        dataset = SupervisedDataset(data_cfg, prompt_format, processor.image_processor)
    logger.info(f"data: {len(dataset)} samples, tasks {dataset.tasks}, {dataset.skipped.count} skipped")
    return dataset, Collator(processor.tokenizer.pad_token_id)


def load_model(parsed):
    """(base model, processor) of `--model_name_or_path`, frozen, in the training dtype."""
    from ..model.builder import load_base, resolve_dtype

    a, args = parsed.model, parsed.training
    return load_base(a.model_name_or_path, resolve_dtype(a.torch_dtype, args.bf16, args.fp16), a.attn_implementation)


def train_one(method, model, processor, dataset, collator, parsed, resume: str | None = None):
    """Wrap `model` with `method`, train it on `dataset` and save into `parsed.training.output_dir`."""
    from ..methods.base import BuildContext
    from ..model.builder import lora_target_names, projector_parameters
    from .trainer import LlavaTrainer

    model_args, args = parsed.model, parsed.training
    ctx = BuildContext(model_args=model_args, training_args=args, train_dataset=dataset, collator=collator,
                       target_modules=lora_target_names(model, model_args.lora_target_modules), resume_dir=resume)
    model = method.build(model, ctx)
    if model_args.tune_mm_projector:
        for _, p in projector_parameters(model):
            p.requires_grad_(True)
    _log_parameters(model, method.name)

    trainer = LlavaTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator,
                           processing_class=processor, method=method, mm_projector_lr=model_args.mm_projector_lr,
                           prompt_format=dataset.format)
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(args.output_dir)
    if trainer.is_world_process_zero():
        trainer.state.save_to_json(os.path.join(args.output_dir, "trainer_state.json"))
        skipped = getattr(dataset, "skipped", None)
        if skipped is not None and skipped.count:
            logger.warning(f"skipped {skipped.count} bad samples (--skip_bad_samples), e.g.:\n  "
                           + "\n  ".join(skipped.examples))
        logger.info(f"saved to {args.output_dir}")
    return trainer


def run(method, parsed):
    """The whole single-method run behind `train.py --method NAME`; returns the Trainer."""
    from transformers import set_seed

    resume = resolve_resume(parsed.training.resume_from_checkpoint, parsed.training.output_dir)
    set_seed(parsed.training.seed)
    model, processor = load_model(parsed)
    dataset, collator = load_data(parsed, processor)
    return train_one(method, model, processor, dataset, collator, parsed, resume)
