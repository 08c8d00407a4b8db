"""One training run: load the base, build the data, wrap the model with the method, train, save.

`load_model`, `load_data` and `train_one` are the steps; `run` chains them for one method. Recipes that train
several times (`llava_thanora/recipes/`) call the same steps. The command line itself is `llava_thanora.cli`.
"""

from __future__ import annotations

import logging
import os
from functools import partial

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
    """(dataset, collator) of `--data_path`: each file parsed and checked once (the main process of each node
    first, the others read its Arrow cache); samples are tokenized when drawn."""
    from ..data.conversation import PromptFormat
    from ..data.dataset import Collator, DataConfig, SupervisedDataset
    from ..model.builder import read_config
    from ..model.families import family_of

    data_args, args = parsed.data, parsed.training
    family = family_of(read_config(parsed.model.model_name_or_path))
    data_cfg = DataConfig(
        data_paths=[p for p in data_args.data_path.split(",") if p], image_folder=data_args.image_folder,
        model_max_length=args.model_max_length,
        image_aspect_ratio=data_args.image_aspect_ratio or family.default_aspect_ratio,
        skip_bad_samples=data_args.skip_bad_samples, cache_dir=data_args.data_cache_dir,
        max_samples=data_args.max_train_samples,
    )
    images = family.image_token is not None
    with args.main_process_first(desc="parsing and checking the training data"):
        prompt_format = PromptFormat.from_processor(processor, data_args.conv_mode,
                                                    image_seq_length=family.nominal_image_tokens(processor))
        encode = partial(family.process_images, processor) if images else None
        dataset = SupervisedDataset(data_cfg, prompt_format, processor.image_processor, encode)
    logger.info(f"data: {len(dataset)} samples, tasks {dataset.tasks}, {dataset.skipped.count} skipped")
    token_inputs = partial(family.token_inputs, image_token_id=prompt_format.image_token_id)
    return dataset, Collator(processor.tokenizer.pad_token_id, family.collate_images, token_inputs)


def load_model(parsed):
    """(base model, processor) of `--model_name_or_path`, frozen, in the training dtype. LLaVA's architecture flags
    are checked against its config first; `--pretrain_mm_mlp_adapter` is loaded into its projector."""
    from transformers import AutoConfig

    from ..distributed import gathered
    from ..model.builder import load_base, projector_module, read_config, resolve_dtype
    from ..model.families import family_of
    from ..model.original import check_architecture_flags, load_projector

    a, args = parsed.model, parsed.training
    read_config(a.model_name_or_path)  # an original-layout LLaVA checkpoint stops here, naming the converter
    check_architecture_flags(
        AutoConfig.from_pretrained(a.model_name_or_path), mm_projector_type=a.mm_projector_type,
        mm_vision_select_layer=a.mm_vision_select_layer, mm_vision_select_feature=a.mm_vision_select_feature,
        mm_use_im_start_end=a.mm_use_im_start_end, mm_use_im_patch_token=a.mm_use_im_patch_token,
        mm_patch_merge_type=a.mm_patch_merge_type)
    model, processor = load_base(a.model_name_or_path, resolve_dtype(a.torch_dtype, args.bf16, args.fp16),
                                 a.attn_implementation)
    family_of(model).set_pixel_bounds(processor, parsed.data.image_min_pixels, parsed.data.image_max_pixels)
    logger.info(family_of(model).describe(model)
                + (f"; --vision_tower {a.vision_tower} is not loaded (the checkpoint holds its tower)"
                   if a.vision_tower else ""))
    if a.pretrain_mm_mlp_adapter:
        projector = projector_module(model)
        with gathered(list(projector.parameters()), modifier_rank=0):
            load_projector(projector, a.pretrain_mm_mlp_adapter)
        logger.info(f"projector: loaded from --pretrain_mm_mlp_adapter {a.pretrain_mm_mlp_adapter}")
    return model, processor


def set_projector_training(model, model_args, learning_rate: float) -> None:
    """LLaVA's rule: the projector trains in every run (a LoRA method leaves it frozen, LLaVA turns it back on)
    unless --freeze_mm_mlp_adapter; then there must still be something to train. A family without a projector (a
    text-only model) has nothing for the projector flags to act on: they are errors."""
    from ..model.builder import projector_parameters
    from ..model.families import family_of

    family = family_of(model)
    if not family.has_projector:
        given = [flag for flag, value in (("--mm_projector_lr", model_args.mm_projector_lr),
                                          ("--tune_mm_projector", model_args.tune_mm_projector),
                                          ("--freeze_mm_mlp_adapter", model_args.freeze_mm_mlp_adapter),
                                          ("--pretrain_mm_mlp_adapter", model_args.pretrain_mm_mlp_adapter)) if value]
        if given:
            raise ValueError(f"{', '.join(given)}: {family.name} models have no vision-language projector, so the "
                             f"flag has no effect; remove it")
        return
    train = not model_args.freeze_mm_mlp_adapter
    for _, p in projector_parameters(model):
        p.requires_grad_(train)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("nothing to train: --freeze_mm_mlp_adapter froze the projector, the only part this "
                         "--method trains")
    lr = model_args.mm_projector_lr if model_args.mm_projector_lr is not None else learning_rate
    logger.info(f"projector: {f'trained, learning rate {lr}' if train else 'frozen (--freeze_mm_mlp_adapter)'}")


def _trainables_to(model, dtype) -> None:
    """DeepSpeed's bf16/fp16 mode keeps fp32 master weights itself and flattens every trainable tensor of a group
    into one buffer of the training dtype. peft creates adapters in fp32 (autocast_adapter_dtype) while the
    projector is in the model's dtype; the mix would trip ZeRO's flattening, so everything trainable is cast."""
    for p in model.parameters():
        if p.requires_grad and p.is_floating_point() and p.dtype != dtype and not is_partitioned(p):
            p.data = p.data.to(dtype)


def train_one(method, model, processor, dataset, collator, parsed, resume: str | None = None):
    """Wrap `model` with `method`, train it on `dataset` and save into `parsed.training.output_dir`."""
    from ..methods.base import BuildContext
    from ..model.builder import lora_target_names, resolve_dtype
    from .trainer import LlavaTrainer

    model_args, args = parsed.model, parsed.training
    ctx = BuildContext(model_args=model_args, training_args=args, train_dataset=dataset, collator=collator,
                       target_modules=lora_target_names(model, model_args.lora_target_modules), resume_dir=resume,
                       processor=processor)
    model = method.build(model, ctx)
    set_projector_training(model, model_args, args.learning_rate)
    if args.deepspeed and (args.bf16 or args.fp16):
        _trainables_to(model, resolve_dtype(model_args.torch_dtype, args.bf16, args.fp16))
    _log_parameters(model, method.name)

    trainer = LlavaTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator,
                           processing_class=processor, method=method, mm_projector_lr=model_args.mm_projector_lr,
                           prompt_format=dataset.format)
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(args.output_dir)
    if trainer.is_world_process_zero():
        trainer.state.save_to_json(os.path.join(args.output_dir, "trainer_state.json"))
        skipped = getattr(dataset, "skipped", None)
        if skipped is not None and (skipped.count or skipped.lazy_count):
            logger.warning(f"skipped {skipped.report()}")
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
