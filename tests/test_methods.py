"""The baseline methods through `train.py` on the tiny model: PiSSA / CorDA (adapters relative to the original base,
resume without re-initializing), MoE-LoRA (router, balance loss, unmergeable), individual (one adapter per task)
and merge_* (the merged function), each trained a few steps and answering through eval.generate."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from llava_thanora.methods.loading import load_trained
from llava_thanora.cli import main


PREVIEW = {"thanora": ["--thanora_preview_samples", "4"], "corda": ["--corda_preview_samples", "4"]}


def run(model, data, out, method, *extra):
    data_path, image_folder = data
    return main(["--model_name_or_path", model, "--data_path", data_path, "--image_folder", image_folder,
                 "--output_dir", str(out), "--method", method, "--per_device_train_batch_size", "4",
                 "--lora_r", "8", "--lora_alpha", "16", "--lora_dropout", "0", "--max_steps", "3",
                 "--learning_rate", "1e-2", "--tune_mm_projector", *PREVIEW.get(method, []),
                 "--logging_steps", "1", "--report_to", "none", "--disable_tqdm", "true", "--seed", "3",
                 "--dataloader_num_workers", "0", *extra])


@pytest.fixture(scope="module")
def dataset(tiny_model, two_task_data):
    """(the two-task training dataset, its collator), as train.py builds them."""
    from transformers import AutoProcessor

    from llava_thanora.data.conversation import PromptFormat
    from llava_thanora.data.dataset import Collator, DataConfig, SupervisedDataset

    processor = AutoProcessor.from_pretrained(tiny_model)
    cfg = DataConfig(data_paths=two_task_data[0].split(","), image_folder=two_task_data[1], model_max_length=2048)
    data = SupervisedDataset(cfg, PromptFormat.from_processor(processor), processor.image_processor)
    return data, Collator(processor.tokenizer.pad_token_id)


@pytest.fixture(scope="module")
def batch(dataset):
    """One collated batch with an image sample and a text-only sample."""
    data, collator = dataset
    first = data.task_indices()
    return collator([data[first["color"][0]], data[first["count"][0]]])


def build_context(model, output_dir, **kw):
    """What train.py hands a method's `build` (the parts PiSSA / CorDA read)."""
    from llava_thanora.methods.base import BuildContext
    from llava_thanora.model.builder import lora_target_names
    from llava_thanora.train.args import ModelArguments

    model_args = ModelArguments(model_name_or_path="unused", lora_r=8, lora_alpha=16, lora_dropout=0.0)
    training_args = SimpleNamespace(device=torch.device("cpu"), output_dir=str(output_dir), should_save=True, seed=7)
    return BuildContext(model_args=model_args, training_args=training_args,
                        target_modules=lora_target_names(model), **kw)


def logits(model, batch):
    with torch.no_grad():
        return model.eval()(**{k: v for k, v in batch.items() if k != "labels"}).logits


def answers(out, tiny_model, image_folder):
    """What eval.generate answers with a saved output (greedy, 3 tokens)."""
    from eval.generate import Generator

    model, processor, kind = load_trained(str(out), tiny_model)
    questions = [{"question_id": "q", "image": "color_0.png", "text": "What color is the image?"}]
    return kind, Generator(model, processor, image_folder, max_new_tokens=3).answer(questions)


@pytest.fixture(scope="module")
def peft_init_runs(tiny_model, two_task_data, tmp_path_factory):
    return {m: run(tiny_model, two_task_data, tmp_path_factory.mktemp(m), m) for m in ("pissa", "corda")}


@pytest.mark.parametrize("method", ["pissa", "corda"])
def test_peft_init_saves_an_adapter_of_the_original_base(peft_init_runs, method, tiny_model, two_task_data, batch):
    trainer = peft_init_runs[method]
    out = Path(trainer.args.output_dir)
    base = load_trained(tiny_model)[0]
    name = "model.language_model.layers.0.self_attn.q_proj"
    residual = dict(trainer.model.named_parameters())[f"base_model.model.{name}.base_layer.weight"]
    assert (residual - dict(base.named_parameters())[f"{name}.weight"]).abs().max() > 1e-3  # W was changed
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 16 and config["lora_alpha"] == 32 and config["init_lora_weights"] is True
    reloaded, _, kind = load_trained(str(out), tiny_model)  # the ORIGINAL base plus the saved adapter
    torch.testing.assert_close(logits(reloaded, batch), logits(trainer.model, batch), atol=1e-4, rtol=1e-4)
    assert (logits(reloaded, batch) - logits(base, batch)).abs().max() > 1e-2
    assert answers(out, tiny_model, two_task_data[1])[0] == "peft"


def test_pissa_conversion_equals_peft_own(peft_init_runs, tmp_path):
    trainer = peft_init_runs["pissa"]
    out = Path(trainer.args.output_dir)
    initial = tmp_path / "initial_adapter"  # peft rewrites this folder's config: work on a copy
    initial.mkdir()
    for f in (out / "initial_adapter").iterdir():
        (initial / f.name).write_bytes(f.read_bytes())
    trainer.model.save_pretrained(str(tmp_path / "peft"), path_initial_model_for_weight_conversion=str(initial))
    ours, theirs = load_file(out / "adapter_model.safetensors"), load_file(tmp_path / "peft/adapter_model.safetensors")
    assert ours.keys() == theirs.keys()
    for k in ours:
        torch.testing.assert_close(ours[k], theirs[k], atol=0, rtol=0)


@pytest.mark.parametrize("method", ["pissa", "corda"])
def test_peft_init_resume_restores_residual_and_factors(peft_init_runs, method, tiny_model, tmp_path):
    from llava_thanora.methods.registry import get_method

    trainer = peft_init_runs[method]
    checkpoint = Path(trainer.args.output_dir) / "checkpoint-3"
    fresh, base = get_method(method), load_trained(tiny_model)[0]
    # no SVD and no preview: neither the method flags nor the data are given
    rebuilt = fresh.build(base, build_context(base, tmp_path, resume_dir=str(checkpoint)))
    fresh.load_trainable(rebuilt, str(checkpoint))
    expected = dict(trainer.model.named_parameters())
    for name, p in rebuilt.named_parameters():
        assert torch.equal(p, expected[name]), name  # residual base weights bit-identical, factors restored
    rewritten = load_file(tmp_path / "initial_adapter/adapter_model.safetensors")
    original = load_file(Path(trainer.args.output_dir) / "initial_adapter/adapter_model.safetensors")
    assert rewritten.keys() == original.keys() and all(torch.equal(rewritten[k], original[k]) for k in original)


@pytest.mark.parametrize("method,weights", [("corda", "adapter_model"), ("moelora", "moelora_model")])
def test_resumed_run_ends_where_the_uninterrupted_one_does(method, weights, tiny_model, two_task_data, tmp_path):
    steps = ("--max_steps", "2", "--save_steps", "1", "--lora_dropout", "0.1")
    run(tiny_model, two_task_data, tmp_path / "full", method, *steps)
    run(tiny_model, two_task_data, tmp_path / "resumed", method, *steps,
        "--resume_from_checkpoint", str(tmp_path / "full/checkpoint-1"))
    for name in (f"{weights}.safetensors", "non_lora_trainables.safetensors"):
        a, b = load_file(tmp_path / "full" / name), load_file(tmp_path / "resumed" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_corda_previews_the_same_samples_as_thanora(tiny_model, dataset, tmp_path):
    """CorDA forwards the seeded preview draw of each task (the one ThanoRA previews), one sample per forward."""
    from llava_thanora.data.preview import preview_indices, task_previews
    from llava_thanora.methods.peft_init import CorDAArguments, CorDAMethod

    data, collator = dataset
    model, seen = load_trained(tiny_model)[0], []
    model.register_forward_pre_hook(lambda m, args, kwargs: seen.append(kwargs["input_ids"]), with_kwargs=True)
    ctx = build_context(model, tmp_path, train_dataset=data, collator=collator)
    CorDAMethod(CorDAArguments(corda_preview_samples=3)).build(model, ctx)
    thanora = [b["input_ids"][0].tolist() for batches in task_previews(data, collator, 3, 1, 7).values() for b in batches]
    drawn = preview_indices(data, 3, 7)
    expected = [data[i]["input_ids"].tolist() for indices in drawn.values() for i in indices]
    assert [x.shape[0] for x in seen] == [1] * 6
    assert [x[0].tolist() for x in seen] == thanora == expected
    # the draw: 3 distinct samples of each task in dataset order, fixed by the seed, not the file's first three
    per_task = data.task_indices()
    assert all(len(per_task[t]) > 3 for t in per_task)
    for task, indices in drawn.items():
        assert len(set(indices)) == 3 and set(indices) <= set(per_task[task]) and indices == sorted(indices)
    assert preview_indices(data, 3, 7) == drawn
    draws = [preview_indices(data, 3, seed) for seed in range(8)]
    assert any(d != drawn for d in draws)
    assert any(d[t] != per_task[t][:3] for d in draws for t in d)
    assert preview_indices(data, 100, 7) == per_task  # fewer samples than asked: all of them


def test_zero3_is_refused_for_decomposing_inits(tiny_model, tmp_path):
    from llava_thanora.methods.peft_init import PiSSAMethod

    model = load_trained(tiny_model)[0]
    next(model.parameters()).ds_id = 0  # what a ZeRO-3 partitioned parameter carries
    with pytest.raises(ValueError, match="zero2.json"):
        PiSSAMethod().build(model, build_context(model, tmp_path))


def test_moelora_trains_routes_and_reloads(tiny_model, two_task_data, tmp_path, batch):
    from llava_thanora.moelora import merge_moelora, moelora_layers

    trainer = run(tiny_model, two_task_data, tmp_path, "moelora", "--moelora_num_experts", "3")
    balance = [h["moe_balance"] for h in trainer.state.log_history if "moe_balance" in h]
    assert len(balance) == 3 and all(1.0 <= b <= 3.0 + 1e-6 for b in balance)
    layer = moelora_layers(trainer.model)[0]
    captured = []
    handle = layer.register_forward_hook(lambda m, args, out: captured.append(args[0]))
    logits(trainer.model, batch)
    handle.remove()
    probs = layer.route(captured[0])
    assert probs.shape[-1] == 3 and torch.allclose(probs.sum(-1), torch.ones(probs.shape[:-1]), atol=1e-6)
    assert probs.std(dim=-1).mean() > 1e-4  # a real, input-dependent mixture
    assert (tmp_path / "moelora_config.json").is_file() and not (tmp_path / "adapter_config.json").exists()
    reloaded, _, kind = load_trained(str(tmp_path), tiny_model)
    assert kind == "moelora"
    torch.testing.assert_close(logits(reloaded, batch), logits(trainer.model, batch), atol=1e-5, rtol=1e-5)
    with pytest.raises(RuntimeError, match="cannot be merged"):
        merge_moelora(reloaded)
    assert answers(tmp_path, tiny_model, two_task_data[1])[0] == "moelora"


def test_moelora_rank_matches_the_lora_budget():
    from llava_thanora.methods.moelora import lora_parameter_count, matched_rank, moelora_parameter_count

    shapes = [(4096, 4096)] * 4 + [(4096, 11008)] * 2 + [(11008, 4096)]  # one llava-1.5-7b decoder layer
    assert matched_rank(shapes, 128, 4) == 48
    ratio = moelora_parameter_count(shapes, 48, 4) / lora_parameter_count(shapes, 128)
    assert abs(ratio - 1) < 0.01


@pytest.fixture(scope="module")
def individual(tiny_model, two_task_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("individual")
    return out, run(tiny_model, two_task_data, out, "individual")


def test_individual_trains_one_adapter_per_task_on_its_own_data(individual, tiny_model, two_task_data):
    out, result = individual
    manifest = json.loads((out / "individual.json").read_text())
    assert manifest["tasks"] == {"color": "color", "count": "count"} and set(result) == {"color", "count"}
    # --max_steps 3 over 48 samples (24 a task): each task gets its share, round(3 * 24 / 48) = 2 steps, not 3
    assert manifest["max_steps"] == {"color": 2, "count": 2}
    for task in ("color", "count"):
        state = json.loads((out / task / "trainer_state.json").read_text())
        assert state["global_step"] == 2 and state["epoch"] == pytest.approx(1 / 3)  # 8 of its own 24 samples
        assert (out / task / "adapter_model.safetensors").is_file()
        assert load_file(out / task / "non_lora_trainables.safetensors")  # each task trained its projector
    a, b = (load_file(out / t / "adapter_model.safetensors") for t in ("color", "count"))
    assert any(not torch.allclose(a[k], b[k]) for k in a)
    assert answers(out / "color", tiny_model, two_task_data[1])[0] == "peft"
    with pytest.raises(FileNotFoundError, match="individual output"):
        load_trained(str(out), tiny_model)


def task_update(task_dir: Path) -> dict[str, torch.Tensor]:
    """{base weight name: s B A} of a saved task LoRA."""
    config = json.loads((task_dir / "adapter_config.json").read_text())
    weights, scale = load_file(task_dir / "adapter_model.safetensors"), config["lora_alpha"] / config["r"]
    return {k.removeprefix("base_model.model.").replace("lora_A.weight", "weight"):
            scale * weights[k.replace("lora_A", "lora_B")] @ a for k, a in weights.items() if "lora_A" in k}


def test_merge_ta_is_the_sum_of_the_task_updates(individual, tiny_model, tmp_path, batch, two_task_data):
    out, _ = individual
    merged_out = tmp_path / "ta"
    run(tiny_model, two_task_data, merged_out, "merge_ta", "--merge_individual_dir", str(out),
        "--merge_weights", "1,0.5")
    merged, _, kind = load_trained(str(merged_out), tiny_model)
    expected = load_trained(tiny_model)[0]
    params = dict(expected.named_parameters())
    with torch.no_grad():
        for weight, task in ((1.0, "color"), (0.5, "count")):
            for name, delta in task_update(out / task).items():
                params[name] += weight * delta
        projectors = [load_file(out / t / "non_lora_trainables.safetensors") for t in ("color", "count")]
        for name in projectors[0]:  # the projector's task vectors with the adapters' weights
            base = params[name].clone()
            params[name].copy_(base + 1.0 * (projectors[0][name] - base) + 0.5 * (projectors[1][name] - base))
    assert kind == "peft" and json.loads((merged_out / "merge.json").read_text())["weights"] == [1.0, 0.5]
    torch.testing.assert_close(logits(merged, batch), logits(expected, batch), atol=1e-4, rtol=1e-4)


def test_full_rank_dare_without_dropping_is_task_arithmetic(individual, tiny_model, tmp_path, batch, two_task_data):
    """DARE at density 1 drops nothing, so at --merge_svd_rank 0 (full rank, no truncation) it is the plain sum."""
    out, _ = individual
    for method, extra in (("merge_ta", ()), ("merge_dare", ("--merge_density", "1", "--merge_svd_rank", "0"))):
        run(tiny_model, two_task_data, tmp_path / method, method, "--merge_individual_dir", str(out), *extra)
    dare, ta = (load_trained(str(tmp_path / m), tiny_model)[0] for m in ("merge_dare", "merge_ta"))
    assert json.loads((tmp_path / "merge_dare/adapter_config.json").read_text())["r"] == 64  # tiny: hidden 64
    torch.testing.assert_close(logits(dare, batch), logits(ta, batch), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("method", ["merge_ties", "merge_dare"])
def test_merge_ties_and_dare_save_loadable_adapters(individual, tiny_model, tmp_path, two_task_data, method):
    out, _ = individual
    run(tiny_model, two_task_data, tmp_path, method, "--merge_individual_dir", str(out), "--merge_density", "0.5",
        "--merge_svd_rank", "8")
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["r"] == 8 and (tmp_path / "non_lora_trainables.safetensors").is_file()
    kind, rows = answers(tmp_path, tiny_model, two_task_data[1])
    assert kind == "peft" and rows[0]["question_id"] == "q"


def test_merge_without_an_individual_run_is_a_clear_error(tiny_model, two_task_data, tmp_path):
    with pytest.raises(ValueError, match="needs --merge_individual_dir"):
        run(tiny_model, two_task_data, tmp_path / "m", "merge_ta")
    with pytest.raises(FileNotFoundError, match="individual.json not found"):
        run(tiny_model, two_task_data, tmp_path / "m", "merge_ties", "--merge_individual_dir", str(tmp_path))


def test_combine_joins_per_task_scores(tmp_path):
    from eval.tables import combine_scores

    files = []
    for task, bench, score in (("a", "bench_a", 10.0), ("b", "bench_b", 30.0)):
        files.append(tmp_path / f"{task}.json")
        files[-1].write_text(json.dumps({"method": "individual", "seed": 0, "model": task,
                                         "scores": {bench: {"metric": "m", "score": score}}}))
    result = combine_scores([str(f) for f in files])
    assert result["scores"] == {"bench_a": {"metric": "m", "score": 10.0}, "bench_b": {"metric": "m", "score": 30.0}}
    assert result["seed"] == 0 and result["model"] == ["a", "b"]
    with pytest.raises(ValueError, match="already scored"):
        combine_scores([str(files[0]), str(files[0])])


@pytest.mark.parametrize("rslora", [False, True])
@pytest.mark.parametrize("method,extra", [("pissa", ()), ("corda", ()), ("thanora", ("--thanora_init", "context"))])
def test_portable_adapter_reproduces_the_trained_model(method, extra, rslora, tiny_model, two_task_data, tmp_path,
                                                       batch):
    """Every method with a residual base writes `[B, -B0][A; A0]` at rank 2r with the trained scaling: alpha x 2
    for LoRA's alpha / r, alpha x sqrt(2) for rsLoRA's alpha / sqrt(r) (one shared module does it)."""
    trainer = run(tiny_model, two_task_data, tmp_path, method, *extra, "--use_rslora", str(rslora).lower())
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["use_rslora"] is rslora and config["r"] == 16
    assert config["lora_alpha"] == pytest.approx(16 * (2 ** 0.5 if rslora else 2))
    trained = logits(trainer.model, batch)
    assert (trained - logits(load_trained(tiny_model)[0], batch)).abs().max() > 1e-3  # training changed it
    portable, _, kind = load_trained(str(tmp_path), tiny_model)  # plain peft on the ORIGINAL base
    assert kind == "peft"
    torch.testing.assert_close(logits(portable, batch), trained, atol=1e-4, rtol=1e-4)
