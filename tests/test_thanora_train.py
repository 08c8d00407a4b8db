"""`train.py --method thanora` on the tiny LLaVA: unchanged function at init, and the trained function is what
the merge script and the exported peft adapter (on the ORIGINAL base) give back."""

from __future__ import annotations

import json
import logging
import statistics
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
    precision = ("--thanora_cov_dtype", "float32") if init == "activation" else ()  # the opt-in flag reaches the config
    trainer = main(thanora_args(tiny_model, two_task_data, tmp_path / init, "--max_steps", "1",
                                "--learning_rate", "0", "--thanora_init", init, *precision))
    assert torch.allclose(logits(trainer.model, probe_batch), base_logits, atol=1e-5)
    state = json.loads((tmp_path / init / "thanora.json").read_text())
    assert state["config"]["cov_dtype"] == ("float32" if precision else "float64")
    r_coop = state["r_coop"]
    assert r_coop == 8 // 3  # floor(r / (T + 1)) with T = 2
    for module in state["modules"].values():
        ranks = [t["rank"] for t in module["tasks"].values()]
        assert sum(ranks) == 8 - r_coop and min(ranks) >= 1


def test_trained_merged_and_exported_adapter_agree(tiny_model, two_task_data, tmp_path, probe_batch, base_logits,
                                                   caplog):
    from peft import PeftModel
    from transformers import LlavaForConditionalGeneration

    out = tmp_path / "trained"
    # q/k/v also match the vision tower's layers, which the text-only task "count" never reaches.
    targets = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    with caplog.at_level(logging.WARNING, logger="llava_thanora"):
        trainer = main(thanora_args(tiny_model, two_task_data, out, "--max_steps", "6", "--learning_rate", "5e-3",
                                    "--thanora_lambda", "0.5", "--tune_mm_projector", "--lora_target_modules", targets,
                                    "--thanora_eps", "1e-4", "--thanora_entropy_on_squared", "true",
                                    "--thanora_penalty_floor", "0.2"))
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
    assert {k: state["config"][k] for k in ("eps", "entropy_on_squared", "penalty_floor")} == {
        "eps": 1e-4, "entropy_on_squared": True, "penalty_floor": 0.2}

    # A task that never reaches a layer: entropy and share null there, rank r_min, one warning per input group.
    vision = {n: m for n, m in state["modules"].items() if "vision_tower" in n}
    assert len(vision) == 3 * 2 and len(state["modules"]) == len(vision) + 7 * 2
    for name, module in state["modules"].items():
        count, color = module["tasks"]["count"], module["tasks"]["color"]
        assert color["entropy"] is not None
        if name in vision:
            assert (count["entropy"], count["share"], count["rank"]) == (None, None, 1)
            assert color["share"] == 1.0 and color["rank"] == 8 - state["r_coop"] - 1
        else:
            assert count["entropy"] is not None
    warned = [r.getMessage() for r in caplog.records if "no token of task(s) 'count'" in r.getMessage()]
    assert len(warned) == 2 and all("vision_tower" in w and "q_proj" in w and "v_proj" in w for w in warned)

    # Only what resuming needs is written: in activation mode the trained rank-r adapter (no copy, no A0/B0).
    assert not (out / "thanora_residual").exists() and not (out / "thanora_init.safetensors").exists()
    base = LlavaForConditionalGeneration.from_pretrained(tiny_model)
    lora_bytes = sum(4 * 8 * (m.in_features + m.out_features) for n, m in base.named_modules() if n in state["modules"])
    saved = out / "adapter_model.safetensors"
    with open(saved, "rb") as handle:
        header = 8 + int.from_bytes(handle.read(8), "little")  # safetensors: u64 header length, JSON header, data
    assert saved.stat().st_size - header <= 1.05 * lora_bytes


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


@pytest.fixture(scope="module")
def grad_norms(tiny_model, two_task_data, tmp_path_factory):
    """Logged grad_norm and spr_penalty of the first 20 steps, for every init, with the default lambda and with 0."""
    out = {}
    for init in ("activation", "random", "context"):
        for lam in (None, "0"):
            flags = ["--thanora_init", init, *(("--thanora_lambda", lam) if lam else ())]
            trainer = main(thanora_args(tiny_model, two_task_data, tmp_path_factory.mktemp("gn"), "--lora_r", "16",
                                        "--lora_alpha", "32", "--lora_dropout", "0.05", "--max_steps", "20",
                                        "--learning_rate", "2e-4", *flags))
            logs = [h for h in trainer.state.log_history if "grad_norm" in h]
            out[init, lam is None] = ([h["grad_norm"] for h in logs], [h["spr_penalty"] for h in logs])
    return out


@pytest.mark.parametrize("init", ["activation", "random", "context"])
def test_penalty_is_well_posed_under_every_init(grad_norms, init):
    """B = 0 at init (activation, random) must not let the penalty's gradient swamp the LM's: the clipped update
    would then follow the penalty instead of the data. Same run with --thanora_lambda 0 as the reference."""
    (with_penalty, penalty), (without, penalty_off) = grad_norms[init, True], grad_norms[init, False]
    assert len(with_penalty) == len(without) == 20
    ratios = [a / b for a, b in zip(with_penalty, without)]
    assert statistics.median(ratios) <= 1.5 and max(ratios) <= 3.0, ratios
    # ... and the penalty still does its job: it falls during training, below the run without it.
    assert penalty[-1] < max(penalty) and penalty[-1] < 0.95 * penalty_off[-1], (penalty, penalty_off)


@pytest.mark.parametrize("zero", ["zero2.json", "zero3.json"])
def test_reentrant_checkpointing_is_refused_under_zero_2_and_3_before_the_preview(zero):
    """The penalty plus reentrant recomputation give each LoRA weight two gradients per step, which ZeRO-2 rejects
    ("Gradient computed twice") and ZeRO-3 crashes on; refuse it at once, naming the flag and the way out."""
    from types import SimpleNamespace

    from llava_thanora.methods.base import BuildContext
    from llava_thanora.methods.thanora import ThanoRAArguments, ThanoRAMethod, check_checkpointing

    def args(kwargs, deepspeed=str(REPO / zero)):
        return SimpleNamespace(gradient_checkpointing=True, gradient_checkpointing_kwargs=kwargs, deepspeed=deepspeed)

    for kwargs in ({"use_reentrant": True}, '{"use_reentrant": true}'):
        with pytest.raises(ValueError, match=r"--gradient_checkpointing_kwargs .*use_reentrant\": false.*--thanora_lambda 0"):
            check_checkpointing(args(kwargs), 0.1)
    check_checkpointing(args({"use_reentrant": False}), 0.1)  # the default: fine
    check_checkpointing(args({"use_reentrant": True}), 0.0)  # no penalty gradient: fine
    check_checkpointing(args({"use_reentrant": True}, deepspeed=None), 0.1)  # one process: tested equal values
    # build() checks first: the model (None here) and the data are never touched.
    with pytest.raises(ValueError, match="use_reentrant"):
        ThanoRAMethod(ThanoRAArguments()).build(None, BuildContext(model_args=None, training_args=args({"use_reentrant": True})))


def test_resumed_context_run_ends_where_the_uninterrupted_one_does(tiny_model, two_task_data, tmp_path):
    """A checkpoint holds only the portable adapter and thanora.json; its halves rebuild the residual base and the
    trained factors, so resuming gives bit-identical weights (context init: the hardest layout)."""
    from safetensors.torch import load_file

    steps = ("--max_steps", "2", "--save_strategy", "steps", "--save_steps", "1", "--thanora_init", "context",
             "--learning_rate", "5e-3", "--lora_dropout", "0.1")
    main(thanora_args(tiny_model, two_task_data, tmp_path / "full", *steps))
    checkpoint = tmp_path / "full/checkpoint-1"
    assert not (checkpoint / "thanora_init.safetensors").exists() and not (checkpoint / "thanora_residual").exists()
    main(thanora_args(tiny_model, two_task_data, tmp_path / "resumed", *steps, "--resume_from_checkpoint",
                      str(checkpoint)))
    a, b = (load_file(tmp_path / run / "adapter_model.safetensors") for run in ("full", "resumed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
