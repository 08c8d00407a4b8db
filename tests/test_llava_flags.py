"""LLaVA's own command lines: its flags parse to ours, architecture flags are checked against the checkpoint,
contradictions and unsupported values are errors, the projector trains as in LLaVA, and length grouping works on
mixed image/text data. (The full finetune_task_lora.sh set under ZeRO-3 on 2 ranks: tests/test_deepspeed.py.)"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from llava_thanora.cli import main, registered
from llava_thanora.train.args import parse_args

BASE = ["--model_name_or_path", "m", "--data_path", "d.json", "--output_dir", "o", "--report_to", "none"]


def parse(*flags):
    return parse_args([*BASE, *flags], registered())


@pytest.mark.parametrize("flags, method, conv_mode", [
    (["--lora_enable", "True"], "lora", "template"),
    (["--lora_enable", "True", "--method", "thanora"], "thanora", "template"),
    (["--lora_enable", "False"], "full", "template"),
    (["--tune_mm_mlp_adapter", "True"], "projector", "template"),
    (["--version", "v1"], "lora", "llava_v1"),
    (["--version", "vicuna_v1", "--conv_mode", "llava_v1"], "lora", "llava_v1"),
])
def test_selecting_flags_resolve_to_ours(flags, method, conv_mode):
    parsed = parse(*flags)
    assert (parsed.model.method, parsed.data.conv_mode) == (method, conv_mode)


def test_transformers4_spellings():
    t = parse("--warmup_ratio", "0.03", "--evaluation_strategy", "no", "--lazy_preprocess", "True", "--bits", "16",
              "--lora_bias", "none").training
    assert t.warmup_steps == 0.03 and t.eval_strategy == "no"


@pytest.mark.parametrize("flags, message", [
    (["--lora_enable", "True", "--method", "full"], "--lora_enable True selects --method lora, which contradicts --method full"),
    (["--lora_enable", "False", "--method", "thanora"], "contradicts --method thanora"),
    (["--tune_mm_mlp_adapter", "True", "--lora_enable", "True"], "contradicts --lora_enable True"),
    (["--version", "v1", "--conv_mode", "template"], "--version v1 selects --conv_mode llava_v1"),
    (["--version", "plain"], "--version plain: only LLaVA-1.5's v1 / vicuna_v1"),
    (["--bits", "4"], "--bits 4: quantized (QLoRA) training is not supported"),
    (["--lora_bias", "all"], "--lora_bias all: only none"),
    (["--lazy_preprocess", "False"], "--lazy_preprocess False"),
    (["--evaluation_strategy", "steps"], "--evaluation_strategy steps"),
    (["--warmup_ratio", "0.03", "--warmup_steps", "5"], "give one"),
    (["--freeze_mm_mlp_adapter", "--mm_projector_lr", "2e-5"], "--mm_projector_lr 2e-05 has no effect"),
    (["--freeze_mm_mlp_adapter", "--tune_mm_projector"], "contradicts"),
    (["--freeze_mm_mlp_adapter", "--method", "projector"], "leaves nothing to train"),
    (["--image_aspect_ratio", "anyres"], "--image_aspect_ratio 'anyres'"),
    (["--group_by_modality_length", "True", "--train_sampling_strategy", "group_by_length"], "give one"),
])
def test_contradictions_and_unsupported_values_are_errors(flags, message):
    with pytest.raises(ValueError) as err:
        parse(*flags)
    assert message in str(err.value)


def test_architecture_flags_are_checked_against_the_checkpoint(tiny_model):
    from transformers import AutoConfig

    from llava_thanora.model.original import check_architecture_flags

    config = AutoConfig.from_pretrained(tiny_model)
    check_architecture_flags(config, mm_projector_type="mlp2x_gelu", mm_vision_select_layer=-2,
                             mm_vision_select_feature="patch", mm_use_im_start_end=False,
                             mm_use_im_patch_token=False, mm_patch_merge_type="flat")
    for flags, message in [
        ({"mm_projector_type": "linear"}, "--mm_projector_type linear: the checkpoint has mlp2x_gelu"),
        ({"mm_vision_select_layer": -1}, "--mm_vision_select_layer -1: the checkpoint has -2"),
        ({"mm_vision_select_feature": "cls_patch"}, "--mm_vision_select_feature cls_patch: the checkpoint has patch"),
        ({"mm_use_im_start_end": True}, "--mm_use_im_start_end True: the checkpoint has False"),
        ({"mm_use_im_patch_token": True}, "--mm_use_im_patch_token True: the checkpoint has False"),
        ({"mm_patch_merge_type": "spatial_unpad"}, "--mm_patch_merge_type spatial_unpad: the checkpoint has flat"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_architecture_flags(config, **flags)


def test_frozen_projector_and_length_grouping_on_mixed_data(tiny_model, two_task_data, tmp_path):
    """--freeze_mm_mlp_adapter keeps the projector out of training; transformers' group_by_length sampler (which
    crashed on mixed image/text data) runs on the lengths the dataset estimates."""
    from llava_thanora.train.sampler import LengthGroupedSampler

    data_path, image_folder = two_task_data
    out = tmp_path / "frozen"
    trainer = main(["--model_name_or_path", tiny_model, "--data_path", data_path, "--image_folder", image_folder,
                    "--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "4",
                    "--lora_r", "4", "--learning_rate", "1e-2", "--freeze_mm_mlp_adapter", "--report_to", "none",
                    "--save_strategy", "no", "--dataloader_num_workers", "0",
                    "--train_sampling_strategy", "group_by_length"])
    assert isinstance(trainer._get_train_sampler(), LengthGroupedSampler)
    assert load_file(out / "non_lora_trainables.safetensors") == {}


def test_pretrain_mm_mlp_adapter_must_match_the_projector(tiny_model, tmp_path):
    from transformers import LlavaForConditionalGeneration

    from llava_thanora.model.builder import projector_module
    from llava_thanora.model.original import load_projector

    projector = projector_module(LlavaForConditionalGeneration.from_pretrained(tiny_model))
    torch.save({"model.mm_projector.0.weight": torch.zeros(64, 64)}, tmp_path / "partial.bin")
    with pytest.raises(ValueError, match=r"missing \['linear_1.bias', 'linear_2.bias', 'linear_2.weight'\]"):
        load_projector(projector, tmp_path / "partial.bin")
    state = {f"model.multi_modal_projector.{k}": v.detach().clone() for k, v in projector.state_dict().items()}
    state["model.multi_modal_projector.linear_2.weight"] = torch.zeros(3, 3)
    from safetensors.torch import save_file

    save_file(state, tmp_path / "shape.safetensors")
    with pytest.raises(ValueError, match=r"linear_2.weight has shape \(3, 3\)"):
        load_projector(projector, tmp_path / "shape.safetensors")
