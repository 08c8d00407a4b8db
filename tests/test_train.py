"""Training path on the tiny model: LoRA learns, checkpoints are complete, a killed run resumes to the same
adapter, merging reproduces the function, and a non-finite loss stops the run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from llava_thanora.cli import main

REPO = Path(__file__).resolve().parents[1]


def train_args(model, data, out, *extra):
    data_path, image_folder = data
    return ["--model_name_or_path", model, "--data_path", data_path, "--image_folder", image_folder,
            "--output_dir", str(out), "--per_device_train_batch_size", "4", "--lora_r", "8", "--lora_alpha", "16",
            "--logging_steps", "1", "--report_to", "none", "--disable_tqdm", "true", "--seed", "7",
            "--dataloader_num_workers", "0", *extra]


def losses(trainer):
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


@pytest.fixture(scope="module")
def lora_run(tiny_model, color_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("lora")
    trainer = main(train_args(tiny_model, color_data, out, "--max_steps", "40", "--learning_rate", "3e-3",
                              "--save_steps", "20", "--tune_mm_projector", "--mm_projector_lr", "1e-3",
                              "--lr_scheduler_type", "constant"))
    return trainer, out


def test_lora_lowers_the_loss(lora_run):
    trainer, _ = lora_run
    seen = losses(trainer)
    assert len(seen) == 40
    first, last = sum(seen[:3]) / 3, sum(seen[-3:]) / 3
    assert last < first - 1.0, f"loss went {first:.3f} -> {last:.3f}"
    # the LM term is logged on its own; with no extra terms it equals the loss
    assert abs(trainer.state.log_history[0]["lm_loss"] - trainer.state.log_history[0]["loss"]) < 1e-3


def test_projector_gets_its_own_learning_rate(lora_run):
    trainer, _ = lora_run
    lrs = sorted({g["lr"] for g in trainer.optimizer.param_groups})
    assert lrs == [1e-3, 3e-3]


@pytest.mark.parametrize("where", ["checkpoint-20", "checkpoint-40", "."])
def test_every_checkpoint_is_complete(lora_run, where):
    _, out = lora_run
    d = out / where
    for name in ("adapter_config.json", "adapter_model.safetensors", "non_lora_trainables.safetensors",
                 "tokenizer_config.json", "chat_template.jinja"):
        assert (d / name).is_file(), f"{name} missing in {d}"
    projector = load_file(d / "non_lora_trainables.safetensors")
    assert projector and all(k.startswith("model.multi_modal_projector.") for k in projector)
    adapter = load_file(d / "adapter_model.safetensors")
    assert any("lora_A" in k for k in adapter) and not any("vision_tower" in k or "lm_head" in k for k in adapter)
    if where != ".":
        for name in ("optimizer.pt", "scheduler.pt", "trainer_state.json", "rng_state.pth"):
            assert (d / name).is_file(), f"{name} missing in {d}"


def test_merge_equals_base_plus_adapter(lora_run, tiny_model, tmp_path, prompt_format, processor):
    from transformers import LlavaForConditionalGeneration

    from llava_thanora.methods.loading import load_trained

    _, out = lora_run
    merged_dir = tmp_path / "merged"
    subprocess.run([sys.executable, str(REPO / "scripts/merge_lora_weights.py"), "--model-path", str(out),
                    "--model-base", tiny_model, "--save-model-path", str(merged_dir)], check=True, capture_output=True)
    adapted, _, kind = load_trained(str(out), tiny_model)
    merged = LlavaForConditionalGeneration.from_pretrained(merged_dir).eval()
    base = LlavaForConditionalGeneration.from_pretrained(tiny_model).eval()
    assert kind == "peft"
    ids = torch.tensor([prompt_format.encode_prompt(prompt_format.generation_prompt("What color is the image?", 1))])
    pixels = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a = adapted(input_ids=ids, pixel_values=pixels).logits
        m = merged(input_ids=ids, pixel_values=pixels).logits
        b = base(input_ids=ids, pixel_values=pixels).logits
    assert torch.allclose(a, m, atol=1e-4), (a - m).abs().max()
    assert (a - b).abs().max() > 1e-2  # the adapter (and projector) really changed the function


KILLER = textwrap.dedent("""
    import os, sys
    from transformers import TrainerCallback
    from llava_thanora.train import trainer as t

    class Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == int(os.environ["KILL_AT"]):
                os.kill(os.getpid(), 9)  # no cleanup, like an OOM kill or a pre-empted node

    init = t.LlavaTrainer.__init__
    def patched(self, *a, **kw):
        init(self, *a, **kw)
        self.add_callback(Kill())
    t.LlavaTrainer.__init__ = patched
    from llava_thanora.cli import main
    main(sys.argv[1:])
""")


def test_kill_and_resume_matches_uninterrupted(tiny_model, color_data, tmp_path):
    common = ["--max_steps", "8", "--save_steps", "4", "--learning_rate", "2e-3", "--lora_dropout", "0.1",
              "--tune_mm_projector"]
    full = tmp_path / "full"
    main(train_args(tiny_model, color_data, full, *common))

    killed = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", KILLER, *train_args(tiny_model, color_data, killed, *common)],
                          env={**os.environ, "KILL_AT": "6"}, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert (killed / "checkpoint-4").is_dir() and not (killed / "checkpoint-8").exists()
    main(train_args(tiny_model, color_data, killed, *common, "--resume_from_checkpoint", "true"))

    for name in ("adapter_model.safetensors", "non_lora_trainables.safetensors"):
        a, b = load_file(full / name), load_file(killed / name)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.allclose(a[k], b[k], atol=1e-6), f"{name}:{k} differs by {(a[k] - b[k]).abs().max()}"


def test_non_finite_loss_stops_the_run(tiny_model, color_data, tmp_path):
    from llava_thanora.train.trainer import NonFiniteLossError

    with pytest.raises(NonFiniteLossError, match="non-finite loss"):
        main(train_args(tiny_model, color_data, tmp_path / "nan", "--max_steps", "5", "--learning_rate", "1e30",
                        "--lr_scheduler_type", "constant", "--max_grad_norm", "0"))
