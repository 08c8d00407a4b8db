"""`train.py --method thanora` on the tiny LLaVA: unchanged function at init, and the trained function is what
the merge script and the exported peft adapter (on the ORIGINAL base) give back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from llava_thanora.cli import main

REPO = Path(__file__).resolve().parents[1]


def thanora_args(model, data, out, *extra):
    data_path, image_folder = data
    return ["--model_name_or_path", model, "--data_path", data_path, "--image_folder", image_folder,
            "--output_dir", str(out), "--method", "thanora", "--lora_r", "8", "--lora_alpha", "16",
            "--lora_dropout", "0", "--per_device_train_batch_size", "4", "--thanora_preview_samples", "16",
            "--report_to", "none", "--save_strategy", "no", "--logging_steps", "1", "--disable_tqdm", "true", *extra]


@pytest.fixture(scope="module")
def probe_batch(two_task_data, tiny_model):
    """One collated batch with images and text-only samples, labels dropped."""
    from transformers import AutoProcessor

    from llava_thanora.data.conversation import PromptFormat
    from llava_thanora.data.dataset import Collator, DataConfig, SupervisedDataset

    processor = AutoProcessor.from_pretrained(tiny_model)
    paths, images = two_task_data
    ds = SupervisedDataset(DataConfig(paths.split(","), images), PromptFormat.from_processor(processor),
                               processor.image_processor)
    idx = ds.task_indices()
    batch = Collator(processor.tokenizer.pad_token_id)([ds[i] for i in idx["color"][:2] + idx["count"][:2]])
    batch.pop("labels")
    return batch


def logits(model, batch):
    with torch.no_grad():
        return model.eval()(**batch).logits


@pytest.fixture(scope="module")
def base_logits(tiny_model, probe_batch):
    from transformers import LlavaForConditionalGeneration

    return logits(LlavaForConditionalGeneration.from_pretrained(tiny_model), probe_batch)


@pytest.mark.parametrize("init", ["context", "activation"])
def test_function_unchanged_at_initialization(tiny_model, two_task_data, tmp_path, probe_batch, base_logits, init):
    trainer = main(thanora_args(tiny_model, two_task_data, tmp_path / init, "--max_steps", "1",
                                "--learning_rate", "0", "--thanora_init", init))
    assert torch.allclose(logits(trainer.model, probe_batch), base_logits, atol=1e-5)
    state = json.loads((tmp_path / init / "thanora.json").read_text())
    r_coop = state["r_coop"]
    assert r_coop == 8 // 3  # floor(r / (T + 1)) with T = 2
    for module in state["modules"].values():
        ranks = [t["rank"] for t in module["tasks"].values()]
        assert sum(ranks) == 8 - r_coop and min(ranks) >= 1


def test_trained_merged_and_exported_adapter_agree(tiny_model, two_task_data, tmp_path, probe_batch, base_logits):
    from peft import PeftModel
    from transformers import LlavaForConditionalGeneration

    out = tmp_path / "trained"
    trainer = main(thanora_args(tiny_model, two_task_data, out, "--max_steps", "6", "--learning_rate", "5e-3",
                                "--thanora_lambda", "0.5", "--tune_mm_projector"))
    trained = logits(trainer.model, probe_batch)
    assert (trained - base_logits).abs().max() > 1e-2  # training really changed the function

    # The exported adapter is relative to the ORIGINAL base: plain peft + the saved projector reproduce the model.
    from llava_thanora.methods.base import load_non_lora

    exported = PeftModel.from_pretrained(LlavaForConditionalGeneration.from_pretrained(tiny_model), str(out))
    load_non_lora(exported, str(out))
    assert torch.allclose(logits(exported, probe_batch), trained, atol=1e-4)

    merged_dir = tmp_path / "merged"
    subprocess.run([sys.executable, str(REPO / "scripts/merge_lora_weights.py"), "--model-path", str(out),
                    "--model-base", tiny_model, "--save-model-path", str(merged_dir)], check=True, capture_output=True)
    merged = LlavaForConditionalGeneration.from_pretrained(merged_dir)
    assert torch.allclose(logits(merged, probe_batch), trained, atol=1e-4)

    state = json.loads((out / "thanora.json").read_text())
    assert all(m["penalty"] is not None and m["penalty"] >= 0 for m in state["modules"].values())
    logged = [h for h in trainer.state.log_history if "spr_penalty" in h]
    assert logged and all("lm_loss" in h for h in logged)  # both terms logged separately
    assert (out / "rank_allocation.png").stat().st_size > 1000


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_penalty_gradient_is_finite_for_zero_b(dtype):
    """init=activation starts with B = 0: the normalized penalty must give 0 and finite (zero) gradients there,
    not 0 * inf = NaN, which the optimizer would write into the weights even at learning rate 0."""
    from llava_thanora.thanora import spr_penalty

    A = [torch.randn(2, 16, dtype=dtype, requires_grad=True), torch.randn(3, 16, dtype=dtype, requires_grad=True)]
    B = [torch.zeros(12, 2, dtype=dtype, requires_grad=True), torch.zeros(12, 3, dtype=dtype, requires_grad=True)]
    value = spr_penalty(A, B, "AB")
    value.backward()
    assert torch.isfinite(value) and value.item() > 0  # the A side is still penalized
    assert all(torch.isfinite(t.grad).all() for t in A + B)
    assert all((b.grad == 0).all() for b in B)
