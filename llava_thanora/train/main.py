"""`train.py`: parse flags, load the base, build the data, wrap the model with the method, train, save."""

from __future__ import annotations

import logging
import os
import sys

from .distributed import apply_cpu_fixes

logger = logging.getLogger("llava_thanora")


def _resolve_resume(value: str | None, output_dir: str) -> str | None:
    if value is None or value.lower() in ("", "false", "none"):
        return None
    if value.lower() == "true":
        from transformers.trainer_utils import get_last_checkpoint

        found = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
        if found is None:
            raise FileNotFoundError(f"--resume_from_checkpoint true: no checkpoint-* folder in {output_dir}")
        return found
    if not os.path.isdir(value):
        raise FileNotFoundError(f"--resume_from_checkpoint {value}: no such checkpoint folder")
    return value


def _log_parameters(model, method_name: str) -> None:
    """Trainable count, and under ZeRO-3 how much of the model this rank really holds (proof of partitioning)."""
    full = lambda p: getattr(p, "ds_numel", p.numel())  # noqa: E731 - ZeRO-3 params report their full size here
    n_train = sum(full(p) for p in model.parameters() if p.requires_grad)
    logger.info(f"method {method_name}: {n_train:,} trainable parameters")
    sharded = [p for p in model.parameters() if hasattr(p, "ds_tensor")]
    if sharded:
        held, total = sum(p.ds_tensor.numel() for p in sharded), sum(p.ds_numel for p in sharded)
        logger.warning(f"ZeRO-3 partitioning: this rank holds {held:,} of {total:,} base-model elements")


def main(argv: list[str] | None = None):
    # Must run before the TrainingArguments exist: they set up the distributed state on creation.
    apply_cpu_fixes(sys.argv[1:] if argv is None else argv)

    from transformers import set_seed

    from ..data.conversation import PromptFormat
    from ..data.dataset import Collator, DataConfig, LazySupervisedDataset
    from ..methods.base import BuildContext
    from ..methods.registry import get_method
    from ..model.builder import load_base, lora_target_names, projector_parameters, resolve_dtype
    from .args import parse_args
    from .trainer import LlavaTrainer

    model_args, data_args, thanora_args, moelora_args, args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.should_log else logging.WARNING, format="%(message)s")
    method = get_method(model_args.method)  # fail on a typo before loading anything
    resume = _resolve_resume(args.resume_from_checkpoint, args.output_dir)
    set_seed(args.seed)

    model, processor = load_base(model_args.model_name_or_path, resolve_dtype(model_args.torch_dtype, args.bf16, args.fp16),
                                 model_args.attn_implementation)
    prompt_format = PromptFormat.from_processor(processor)
    data_cfg = DataConfig(
        data_paths=[p for p in data_args.data_path.split(",") if p], image_folder=data_args.image_folder,
        model_max_length=args.model_max_length, image_aspect_ratio=data_args.image_aspect_ratio,
        skip_bad_samples=data_args.skip_bad_samples, num_proc=data_args.data_num_proc,
        max_samples=data_args.max_train_samples,
    )
    with args.main_process_first(desc="tokenizing the training data"):
        dataset = LazySupervisedDataset(data_cfg, prompt_format, processor.image_processor)
    collator = Collator(processor.tokenizer.pad_token_id)
    logger.info(f"data: {len(dataset)} samples, tasks {dataset.tasks}, {dataset.skipped.count} skipped")

    ctx = BuildContext(model_args=model_args, method_args={"thanora": thanora_args, "moelora": moelora_args},
                       training_args=args, train_dataset=dataset, collator=collator,
                       target_modules=lora_target_names(model, model_args.lora_target_modules), resume_dir=resume)
    model = method.build(model, ctx)
    if model_args.tune_mm_projector:
        for _, p in projector_parameters(model):
            p.requires_grad_(True)
    _log_parameters(model, method.name)

    trainer = LlavaTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator,
                           processing_class=processor, method=method, mm_projector_lr=model_args.mm_projector_lr)
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(args.output_dir)
    if trainer.is_world_process_zero():
        trainer.state.save_to_json(os.path.join(args.output_dir, "trainer_state.json"))
        if dataset.skipped.count:
            logger.warning(f"skipped {dataset.skipped.count} bad samples (--skip_bad_samples), e.g.:\n  "
                           + "\n  ".join(dataset.skipped.examples))
        logger.info(f"saved to {args.output_dir}")
    return trainer
