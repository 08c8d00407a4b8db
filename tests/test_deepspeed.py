"""Two ranks on CPU (gloo) under ZeRO-3: through the c10d rendezvous as a multi-node torchrun launch uses it (with
LLaVA's own flag set), and through `deepspeed --num_gpus 2`; they train, really partition, and save complete,
loadable adapters gathered from the partitions."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]


def deepspeed_launch(args: list[str], timeout: int = 240) -> subprocess.CompletedProcess:
    """Launch train.py on 2 CPU ranks. One thread per rank: 2 ranks share 2 cores."""
    launcher = Path(sys.executable).parent / "deepspeed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("WORLD_SIZE", None)
    cmd = [str(launcher), "--num_gpus", "2", "--master_port", str(29500 + os.getpid() % 1000), "train.py",
           "--deepspeed", "zero3.json", *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc


def llava_task_lora_flags(model: str, data: tuple[str, str], out: Path) -> list[str]:
    """Every flag of LLaVA's scripts/v1_5/finetune_task_lora.sh with its value there; only the paths differ (the
    tiny model, the test data, this repo's zero3.json). finetune_lora.sh adds --pretrain_mm_mlp_adapter."""
    data_path, image_folder = data
    return [
        "--lora_enable", "True", "--lora_r", "128", "--lora_alpha", "256", "--mm_projector_lr", "2e-5",
        "--deepspeed", "zero3.json", "--model_name_or_path", model, "--version", "v1",
        "--data_path", data_path, "--image_folder", image_folder,
        "--vision_tower", "openai/clip-vit-large-patch14-336", "--mm_projector_type", "mlp2x_gelu",
        "--mm_vision_select_layer", "-2", "--mm_use_im_start_end", "False", "--mm_use_im_patch_token", "False",
        "--image_aspect_ratio", "pad", "--group_by_modality_length", "True", "--bf16", "True",
        "--output_dir", str(out), "--num_train_epochs", "1", "--per_device_train_batch_size", "16",
        "--per_device_eval_batch_size", "4", "--gradient_accumulation_steps", "1", "--evaluation_strategy", "no",
        "--save_strategy", "steps", "--save_steps", "50000", "--save_total_limit", "1", "--learning_rate", "2e-4",
        "--weight_decay", "0.", "--warmup_ratio", "0.03", "--lr_scheduler_type", "cosine", "--logging_steps", "1",
        "--tf32", "True", "--model_max_length", "2048", "--gradient_checkpointing", "True",
        "--dataloader_num_workers", "4", "--lazy_preprocess", "True", "--report_to", "wandb",
    ]


def c10d_launch(args: list[str], workdir: Path, nodes: int = 2, timeout: int = 240) -> list[str]:
    """What a multi-node launch runs on every node: `torchrun --nnodes N --nproc_per_node 1 --rdzv_backend c10d
    --rdzv_endpoint HOST:PORT --rdzv_id JOB train.py ...`, here N agents on this machine. The rendezvous assigns
    the node ranks (one agent hosts its store); returns each agent's log."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launcher = Path(sys.executable).parent / "torchrun"
    # --report_to wandb stays on the command line; wandb itself runs disabled (no files, no start-up cost)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "WANDB_MODE": "disabled",
           "WANDB_DIR": str(workdir)}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    cmd = [str(launcher), "--nnodes", str(nodes), "--nproc_per_node", "1", "--rdzv_backend", "c10d",
           "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", f"test-{os.getpid()}", "train.py", *args]
    agents = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for _ in range(nodes)]
    try:
        logs = [a.communicate(timeout=timeout)[0] for a in agents]
    finally:
        for a in agents:
            a.kill()
    for a, log in zip(agents, logs):
        assert a.returncode == 0, log[-4000:]
    return logs


@pytest.mark.slow
def test_llava_flags_on_two_nodes_through_c10d_zero3(tiny_model, two_task_data, tmp_path):
    """LLaVA's flag set (finetune_task_lora.sh, plus finetune_lora.sh's --pretrain_mm_mlp_adapter with an
    mm_projector.bin in LLaVA's key layout), on 2 "nodes" joined by the c10d rendezvous, under ZeRO-3: it trains 2
    steps (mixed image/text data, grouped by modality), really partitions, and saves a complete adapter gathered from
    the partitions, with the projector started from the .bin and trained at --mm_projector_lr as LLaVA does."""
    base = load_file(Path(tiny_model) / "model.safetensors")
    gen = torch.Generator().manual_seed(0)
    pretrained = {f"model.mm_projector.{i}.{w}": 0.05 * torch.randn(base[f"multi_modal_projector.linear_{j}.{w}"].shape,
                                                                    generator=gen)
                  for i, j in ((0, 1), (2, 2)) for w in ("weight", "bias")}
    torch.save(pretrained, tmp_path / "mm_projector.bin")
    out = tmp_path / "ds"
    logs = c10d_launch([*llava_task_lora_flags(tiny_model, two_task_data, out), "--max_steps", "2",
                        "--pretrain_mm_mlp_adapter", str(tmp_path / "mm_projector.bin")], tmp_path)
    log = "\n".join(logs)
    held = [(int(a.replace(",", "")), int(b.replace(",", "")))
            for a, b in re.findall(r"this rank holds ([\d,]+) of ([\d,]+) base-model elements", log)]
    assert len(held) == 2, "both ranks must report their partition"
    for mine, total in held:
        assert mine < 0.6 * total, f"rank holds {mine} of {total}: ZeRO-3 did not partition"
    assert "--vision_tower openai/clip-vit-large-patch14-336 is not loaded" in log
    assert len(re.findall(r"'loss': '([\d.]+)'", log)) == 2
    adapter = load_file(out / "adapter_model.safetensors")
    assert adapter and all(v.numel() > 0 for v in adapter.values()), "gathered adapter tensors must be full-size"
    assert all(v.abs().max() > 0 for k, v in adapter.items() if "lora_B" in k), "every lora_B must have trained"
    projector = load_file(out / "non_lora_trainables.safetensors")
    assert sorted(projector) == [f"model.multi_modal_projector.linear_{i}.{w}" for i in (1, 2) for w in ("bias", "weight")]
    for i, j in ((0, 1), (2, 2)):
        for w in ("weight", "bias"):
            moved = projector[f"model.multi_modal_projector.linear_{j}.{w}"].float() - pretrained[f"model.mm_projector.{i}.{w}"]
            assert 0 < moved.abs().max() < 2e-3, "starts from the .bin, moves at the projector's small lr (bf16)"
    assert json.loads((out / "prompt_format.json").read_text())["conv_mode"] == "llava_v1"  # --version v1


@pytest.mark.slow
def test_zero3_thanora_matches_single_process_allocation(tiny_model, two_task_data, tmp_path):
    """Covariances are summed over ranks (each previews its own shard), base weights are gathered for the SVD:
    the allocation must equal the single-process one, and the exported adapter must load with plain peft.

    Also, in the same launch: the preview gathers module by module (a rank never holds much more than its
    partition plus the largest module), with 17 preview samples per task the ranks run unequal numbers of
    batches and the text-only task's batches skip the vision tower (both kept in step: a rank with a text batch
    runs the vision tower on a blank image while the other runs its images), and the logged lm_loss is the mean
    over ranks."""
    import json

    import torch
    from peft import PeftModel
    from transformers import LlavaForConditionalGeneration

    from llava_thanora.cli import main

    data_path, image_folder = two_task_data
    common = ["--model_name_or_path", tiny_model, "--data_path", data_path, "--image_folder", image_folder,
              "--max_steps", "2", "--per_device_train_batch_size", "2", "--lora_r", "8", "--lora_alpha", "16",
              "--method", "thanora", "--thanora_preview_samples", "17", "--report_to", "none",
              "--thanora_init", "context",  # the harder path: the residual is written into partitioned weights
              "--save_strategy", "no", "--logging_steps", "1"]
    single, multi = tmp_path / "single", tmp_path / "multi"
    main([*common, "--output_dir", str(single), "--learning_rate", "0"])
    proc = deepspeed_launch([*common, "--output_dir", str(multi), "--learning_rate", "1e-3"])
    log = proc.stdout + proc.stderr
    a, b = (json.loads((d / "thanora.json").read_text()) for d in (single, multi))
    assert a["tasks"] == b["tasks"] == ["color", "count"]
    assert a["modules"].keys() == b["modules"].keys()
    for name, mod in a["modules"].items():
        for task, info in mod["tasks"].items():
            other = b["modules"][name]["tasks"][task]
            assert (info["rank"], info["slice"]) == (other["rank"], other["slice"]), name
            # float64 covariances summed in another order across ranks
            assert abs(info["entropy"] - other["entropy"]) < 1e-6
        assert b["modules"][name]["penalty"] is not None

    base = LlavaForConditionalGeneration.from_pretrained(tiny_model)
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in base.modules())
    held = [(int(x.replace(",", "")), int(y.replace(",", ""))) for x, y in
            re.findall(r"held at most ([\d,]+) parameter elements at once \(its partition ([\d,]+)", log)]
    assert len(held) == 2, "both ranks must report what they held during the preview"
    for peak, partition in held:
        assert partition < peak <= partition + largest, (peak, partition, largest)

    # The logged loss is the mean over ranks of lm_loss + lambda * penalty: lm_loss must be that mean too.
    steps = re.findall(r"'loss': '([\d.]+)'.*?'lm_loss': '([\d.]+)', 'spr_penalty': '([\d.]+)'", log)
    assert len(steps) == 2
    for loss, lm_loss, penalty in steps:
        assert float(loss) == pytest.approx(float(lm_loss) + 0.1 * float(penalty), abs=2e-3)

    model = PeftModel.from_pretrained(base, str(multi))  # the portable adapter, on the ORIGINAL base
    assert all(torch.isfinite(p).all() for p in model.parameters())
