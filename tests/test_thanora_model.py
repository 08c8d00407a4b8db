"""ThanoRA on a tiny LlamaForCausalLM built from config, with two synthetic tasks."""

import copy
import json

import pytest
import torch
from peft import LoraConfig, PeftModel
from transformers import LlamaConfig, LlamaForCausalLM

from llava_thanora.thanora import ThanoRAConfig, apply_thanora, load_thanora, lora_layers, save_thanora, spr_penalty
from llava_thanora.thanora.covariance import discover_shared_inputs

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
R = 8


def make_base() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4)
    return LlamaForCausalLM(config).eval()


def make_tasks() -> dict[str, list[dict]]:
    """Task "narrow": few distinct tokens, uniform; task "periodic": wide vocabulary with a fixed rhythm."""
    gen = torch.Generator().manual_seed(1)
    tasks = {}
    for task, (low, high, period) in {"narrow": (0, 12, 0), "periodic": (10, 128, 3)}.items():
        batches = []
        for _ in range(3):
            ids = torch.randint(low, high, (4, 20), generator=gen)
            if period:
                ids[:, ::period] = 7
            mask = torch.ones_like(ids)
            mask[0, -6:] = 0  # padding that the preview must skip
            batches.append({"input_ids": ids, "attention_mask": mask})
        tasks[task] = batches
    return tasks


def lora_config() -> LoraConfig:
    return LoraConfig(r=R, lora_alpha=16, target_modules=TARGETS, lora_dropout=0.0)


def logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def train(peft_model, state, tasks, steps=6, lam=None, lr=1e-2):
    lam = state.config.lam if lam is None else lam
    torch.manual_seed(0)
    peft_model.train()
    optim = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=lr)
    batches = [b for task in tasks.values() for b in task]
    penalty = None
    for step in range(steps):
        batch = batches[step % len(batches)]
        state.start_step()
        loss = peft_model(**batch, labels=batch["input_ids"]).loss
        penalty = state.finish_step()
        (loss + lam * penalty).backward()
        optim.step()
        optim.zero_grad()
    peft_model.eval()
    return penalty


@pytest.fixture(scope="module")
def tasks():
    return make_tasks()


@pytest.fixture(scope="module")
def trained(tasks, tmp_path_factory):
    """Context init, lam > 0, a few optimizer steps, saved."""
    peft_model, state = apply_thanora(make_base(), lora_config(), ThanoRAConfig(lam=0.1, preview_samples=8, init="context"), tasks)
    train(peft_model, state, tasks)
    out = tmp_path_factory.mktemp("thanora")
    save_thanora(str(out), peft_model, state)
    return peft_model, state, out


def test_allocation_and_unchanged_function_at_init(tasks):
    batch = tasks["periodic"][0]
    reference = logits(make_base(), batch)
    peft_model, state = apply_thanora(make_base(), lora_config(), ThanoRAConfig(preview_samples=8, init="context"), tasks)
    assert state.r_coop == R // 3 and len(state.modules) == 2 * len(TARGETS)
    for alloc in state.modules.values():
        assert sum(alloc.ranks) == R - state.r_coop and min(alloc.ranks) >= 1
        assert sum(alloc.shares) == pytest.approx(1.0)
        assert all(0.0 <= h <= 1.0 for h in alloc.entropies)
    assert {tuple(a.ranks) for a in state.modules.values()} != {tuple(next(iter(state.modules.values())).ranks)}
    assert any(a.ranks[0] > a.ranks[1] for a in state.modules.values())
    assert any(a.ranks[0] < a.ranks[1] for a in state.modules.values())
    torch.testing.assert_close(logits(peft_model, batch), reference, atol=1e-5, rtol=0)
    # The blocks are really nonzero, i.e. the residual really moved the base weights.
    layer = lora_layers(peft_model)["model.layers.0.self_attn.q_proj"]
    assert layer.lora_B["default"].weight[:, state.r_coop:].abs().sum() > 0
    assert layer.lora_B["default"].weight[:, : state.r_coop].abs().sum() == 0


@pytest.mark.parametrize("mode", ["activation", "random"])
def test_other_init_modes_keep_base(tasks, mode):
    batch = tasks["narrow"][1]
    base = make_base()
    reference = logits(base, batch)
    weight = base.model.layers[1].mlp.down_proj.weight.clone()
    peft_model, state = apply_thanora(base, lora_config(), ThanoRAConfig(init=mode, preview_samples=4), tasks)
    torch.testing.assert_close(logits(peft_model, batch), reference, atol=1e-6, rtol=0)
    layer = lora_layers(peft_model)["model.layers.1.mlp.down_proj"]
    assert torch.equal(layer.base_layer.weight, weight)
    a = layer.lora_A["default"].weight[state.r_coop:]
    if mode == "activation":  # orthonormal rows inside each task block
        start = 0
        for rank in state.modules["model.layers.1.mlp.down_proj"].ranks:
            block = a[start:start + rank]
            torch.testing.assert_close(block @ block.T, torch.eye(rank), atol=1e-5, rtol=0)
            start += rank


def test_shared_inputs_detected(tasks):
    peft_model, _ = apply_thanora(make_base(), lora_config(), ThanoRAConfig(preview_samples=4), tasks)
    groups = discover_shared_inputs(peft_model, lora_layers(peft_model), tasks["narrow"][0], lambda m, b, rec: m(**b))
    attn, mlp = "model.layers.0.self_attn.", "model.layers.0.mlp."
    assert [attn + "q_proj", attn + "k_proj", attn + "v_proj"] in groups
    assert [mlp + "gate_proj", mlp + "up_proj"] in groups
    assert [attn + "o_proj"] in groups and len(groups) == 2 * 4


def test_covariance_budget_gives_identical_result(tasks):
    # context init: the blocks depend on the covariances too, and are kept (init_blocks) for comparison.
    _, unlimited = apply_thanora(make_base(), lora_config(), ThanoRAConfig(preview_samples=8, init="context"), tasks)
    # 0.05 MB holds one 64x64 float64 covariance (32 KB): one group per pass, many preview passes.
    _, tiny = apply_thanora(make_base(), lora_config(),
                            ThanoRAConfig(preview_samples=8, cov_budget_mb=0.05, init="context"), tasks)
    one_shot = {task: iter(batches) for task, batches in tasks.items()}
    with pytest.raises(ValueError, match="one-shot iterator"):
        apply_thanora(make_base(), lora_config(), ThanoRAConfig(cov_budget_mb=0.05), one_shot)
    for name, alloc in unlimited.modules.items():
        assert tiny.modules[name].ranks == alloc.ranks
        assert tiny.modules[name].entropies == pytest.approx(alloc.entropies, abs=1e-6)
        for ref, got in zip(unlimited.init_blocks[name], tiny.init_blocks[name]):
            torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)


def test_collector_matches_spr_penalty_and_checkpointing(tasks):
    batch = tasks["narrow"][0]
    results = []
    for checkpointing in ("none", "non-reentrant", "reentrant"):
        # context init: B is nonzero, so the B side (with its floor) counts too.
        peft_model, state = apply_thanora(make_base(), lora_config(), ThanoRAConfig(preview_samples=4, init="context"),
                                          tasks)
        if checkpointing != "none":
            peft_model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": checkpointing == "reentrant"})
            peft_model.enable_input_require_grads()
        peft_model.train()
        state.start_step()
        loss = peft_model(**batch, labels=batch["input_ids"]).loss
        penalty = state.finish_step()
        (loss + 0.1 * penalty).backward()
        grads = {n: p.grad.clone() for n, p in peft_model.named_parameters() if p.requires_grad}
        results.append((loss.item(), penalty.item(), grads, state.penalties()))
    loss0, pen0, grads0, _ = results[0]
    assert pen0 > 0
    for loss1, pen1, grads1, _ in results[1:]:
        assert pen1 == pytest.approx(pen0, rel=1e-6) and loss1 == pytest.approx(loss0, rel=1e-6)
        for name, grad in grads0.items():
            torch.testing.assert_close(grads1[name], grad, atol=1e-6, rtol=1e-5)
    # The collected value is the mean over modules of spr_penalty on the blocks.
    layers, per_module = lora_layers(peft_model), results[-1][3]
    reference = []
    for name, alloc in state.modules.items():
        a, b = layers[name].lora_A["default"].weight, layers[name].lora_B["default"].weight
        slices = alloc.slices(state.r_coop)
        mu = state.config.penalty_floor * alloc.weight_rms
        reference.append(spr_penalty([a[s:e] for s, e in slices], [b[:, s:e] for s, e in slices], "AB", mu=mu,
                                     scaling=layers[name].scaling["default"]).item())
        assert per_module[name] == pytest.approx(reference[-1], rel=1e-5)
    assert pen0 == pytest.approx(sum(reference) / len(reference), rel=1e-5)


def test_frozen_adapter_with_penalty_raises(tasks):
    peft_model, state = apply_thanora(make_base(), lora_config(), ThanoRAConfig(preview_samples=4), tasks)
    for param in peft_model.parameters():
        param.requires_grad_(False)
    peft_model.train()
    batch = tasks["narrow"][0]
    state.start_step()
    peft_model(**batch, labels=batch["input_ids"])
    with pytest.raises(RuntimeError, match="do not require grad"):
        state.finish_step()
    # With lam = 0 the values are still recorded, without a graph.
    _, quiet = apply_thanora(make_base(), lora_config(), ThanoRAConfig(lam=0.0, preview_samples=4), tasks)
    quiet.attach(lora_layers(peft_model))
    quiet.start_step()
    peft_model(**batch)
    value = quiet.finish_step()
    assert value.item() > 0 and not value.requires_grad


def test_penalty_lowers_with_lambda(tasks):
    finals = {}
    for lam in (0.0, 1.0):
        peft_model, state = apply_thanora(make_base(), lora_config(), ThanoRAConfig(lam=lam, preview_samples=4), tasks)
        start = state.penalties()
        assert all(v is None for v in start.values())
        finals[lam] = train(peft_model, state, tasks, steps=8, lam=lam).item()
    assert finals[1.0] < 0.9 * finals[0.0]


def test_saved_files_and_json_shape(trained):
    _, state, out = trained
    data = json.loads((out / "thanora.json").read_text())
    assert set(data) == {"tasks", "r", "r_coop", "lora_alpha", "config", "modules"}
    assert data["tasks"] == ["narrow", "periodic"] and data["r"] == R and data["r_coop"] == state.r_coop
    assert data["config"]["lam"] == 0.1
    assert set(data["modules"]) == set(state.modules)
    assert all(not name.startswith("base_model") for name in data["modules"])
    entry = data["modules"]["model.layers.1.mlp.up_proj"]
    assert set(entry) == {"coop_slice", "tasks", "penalty", "weight_rms"} and entry["coop_slice"] == [0, state.r_coop]
    assert isinstance(entry["penalty"], float)
    first, second = entry["tasks"]["narrow"], entry["tasks"]["periodic"]
    assert set(first) == {"entropy", "share", "rank", "slice"}
    assert first["slice"] == [state.r_coop, state.r_coop + first["rank"]]
    assert second["slice"] == [first["slice"][1], R]
    assert not (out / "rank_allocation.png").exists()  # saving draws nothing; the training glue plots
    # Only what loading and resuming need: the portable adapter (its halves hold the initial blocks) and the json.
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json", "adapter_model.safetensors", "thanora.json"]
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 2 * R


def test_portable_adapter_loads_with_plain_peft(trained, tasks):
    peft_model, _, out = trained
    batch = tasks["periodic"][1]
    expected = logits(peft_model, batch)
    assert (expected - logits(make_base(), batch)).abs().max() > 1e-3  # training changed the function
    portable = PeftModel.from_pretrained(make_base(), str(out)).eval()
    torch.testing.assert_close(logits(portable, batch), expected, atol=1e-5, rtol=1e-5)
    # Merging the portable adapter into W equals merging the trained one into W_res.
    merged_portable = portable.merge_and_unload()
    merged_residual = copy.deepcopy(peft_model).merge_and_unload()
    torch.testing.assert_close(logits(merged_residual, batch), expected, atol=1e-5, rtol=1e-5)
    for (name, w1), w2 in zip(merged_portable.named_parameters(), merged_residual.parameters()):
        torch.testing.assert_close(w1, w2, atol=1e-5, rtol=1e-5, msg=name)


def test_load_thanora_restores_training_state(trained, tasks):
    peft_model, state, out = trained
    batch = tasks["narrow"][2]
    restored, restored_state = load_thanora(make_base(), str(out))
    torch.testing.assert_close(logits(restored.eval(), batch), logits(peft_model, batch), atol=1e-5, rtol=1e-5)
    assert restored_state.penalties() == pytest.approx(state.penalties())
    assert {n: a.ranks for n, a in restored_state.modules.items()} == {n: a.ranks for n, a in state.modules.items()}
    # The restored collector works and training can continue.
    restored.train()
    restored_state.start_step()
    restored(**batch)
    assert restored_state.finish_step().requires_grad


@pytest.mark.parametrize("mode", ["activation", "random"])
def test_untouched_base_modes_save_only_the_trained_adapter(tasks, tmp_path, mode):
    """No residual: resuming needs neither A0/B0 (not even kept in memory) nor a second copy of the adapter."""
    peft_model, state = apply_thanora(make_base(), lora_config(), ThanoRAConfig(init=mode, preview_samples=4), tasks)
    assert state.init_blocks == {}
    train(peft_model, state, tasks, steps=3)
    save_thanora(str(tmp_path), peft_model, state)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter_config.json", "adapter_model.safetensors",
                                                          "thanora.json"]
    assert json.loads((tmp_path / "adapter_config.json").read_text())["r"] == R
    batch = tasks["periodic"][2]
    restored, restored_state = load_thanora(make_base(), str(tmp_path))
    torch.testing.assert_close(logits(restored.eval(), batch), logits(peft_model, batch), atol=1e-6, rtol=1e-6)
    assert restored_state.penalties() == pytest.approx(state.penalties())
    assert {n: a.weight_rms for n, a in restored_state.modules.items()} == {n: a.weight_rms for n, a in state.modules.items()}


def test_bad_inputs_are_rejected(tasks):
    with pytest.raises(ValueError, match="rank_pattern"):
        apply_thanora(make_base(), LoraConfig(r=R, target_modules=TARGETS, rank_pattern={"q_proj": 4}),
                      ThanoRAConfig(), tasks)
    with pytest.raises(ValueError, match="at least r_min"):
        apply_thanora(make_base(), LoraConfig(r=2, target_modules=TARGETS), ThanoRAConfig(r_coop=1), tasks)
    with pytest.raises(ValueError, match="no preview batches"):
        apply_thanora(make_base(), lora_config(), ThanoRAConfig(), {"empty": [], **tasks})
    with pytest.raises(ValueError, match="'empty' has no preview samples"):
        apply_thanora(make_base(), lora_config(), ThanoRAConfig(), {**tasks, "empty": []})
    with pytest.raises(FileNotFoundError, match="not a ThanoRA output directory"):
        load_thanora(make_base(), "/nonexistent")
