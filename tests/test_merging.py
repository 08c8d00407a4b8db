"""Merging per-task peft LoRAs (task arithmetic, TIES, DARE) on a tiny random LlamaForCausalLM."""

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM

from llava_thanora.recipes.merging import merge_adapters, save_merged_adapter

TARGETS = ["q_proj", "v_proj", "down_proj"]
TASK_RANKS = {"vqa": (4, 8), "ocr.v2": (2, 8)}  # (r, alpha): different ranks and scalings on purpose
IDS = torch.arange(3, 19).reshape(2, 8)


def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    """Two saved task LoRAs with nonzero B and their exact dense updates {module name: [dW_task, ...]}."""
    dirs, deltas = {}, {}
    for seed, (task, (r, alpha)) in enumerate(TASK_RANKS.items()):
        torch.manual_seed(10 + seed)
        config = LoraConfig(r=r, lora_alpha=alpha, target_modules=TARGETS, init_lora_weights=False)
        path = tmp_path_factory.mktemp(f"lora{seed}")
        get_peft_model(tiny_llama(), config).save_pretrained(str(path))
        dirs[task] = str(path)
        weights = load_file(str(path / "adapter_model.safetensors"))
        for key, a in weights.items():
            if key.endswith("lora_A.weight"):
                name = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
                b = weights[key.replace("lora_A", "lora_B")]
                deltas.setdefault(name, []).append((alpha / r) * b @ a)
    return dirs, deltas


def merged_deltas(model: PeftModel) -> dict[str, torch.Tensor]:
    base = dict(tiny_llama().named_parameters())
    plain = model.merge_and_unload()
    return {n.removesuffix(".weight"): p.detach() - base[n] for n, p in plain.named_parameters() if n in base}


def test_task_arithmetic_is_the_exact_weighted_sum(adapters):
    dirs, deltas = adapters
    weights = [0.7, -1.3]
    model = merge_adapters(tiny_llama(), dirs, "ta", weights)
    assert list(model.peft_config) == ["default"]
    assert model.peft_config["default"].r == sum(r for r, _ in TASK_RANKS.values())
    got = merged_deltas(model)
    for name, (d0, d1) in deltas.items():
        torch.testing.assert_close(got[name], weights[0] * d0 + weights[1] * d1, atol=1e-6, rtol=1e-5)
    untouched = [n for n in got if n.endswith("k_proj") or n.endswith("embed_tokens")]
    assert untouched and all(torch.equal(got[n], torch.zeros_like(got[n])) for n in untouched)


def reference_ties(task_deltas, weights, density):
    """TIES on dense task vectors: trim to the top `density` magnitudes, elect signs, disjoint weighted mean."""
    trimmed = []
    for delta in task_deltas:
        keep = torch.zeros(delta.numel())
        keep[delta.abs().flatten().topk(int(density * delta.numel())).indices] = 1
        trimmed.append(delta * keep.view_as(delta))
    stacked = torch.stack(trimmed)
    elected = torch.where(stacked.sum(0) >= 0, 1.0, -1.0)
    agree = (stacked.sign() == elected).float()
    weighted = stacked * torch.tensor(weights).view(-1, 1, 1)
    return (weighted * agree).sum(0) / agree.sum(0).clamp(min=1)


def test_ties_matches_reference_at_full_svd_rank(adapters):
    dirs, deltas = adapters
    weights, density = [1.0, 0.5], 0.3
    model = merge_adapters(tiny_llama(), dirs, "ties", weights, density=density, svd_rank=64)  # 64 = full rank
    got = merged_deltas(model)
    for name, task_deltas in deltas.items():
        expected = reference_ties(task_deltas, weights, density)
        assert (expected != 0).float().mean() < 0.6  # trimming really removed entries
        torch.testing.assert_close(got[name], expected, atol=1e-5, rtol=1e-4)


@pytest.mark.filterwarnings("ignore:The density 1.0")  # peft notes that density 1 prunes nothing
def test_dare_density_one_equals_task_arithmetic(adapters):
    dirs, _ = adapters
    ta = merged_deltas(merge_adapters(tiny_llama(), dirs, "ta", [0.5, 2.0]))
    dare = merged_deltas(merge_adapters(tiny_llama(), dirs, "dare_linear", [0.5, 2.0], density=1.0))
    for name, delta in ta.items():
        torch.testing.assert_close(dare[name], delta, atol=1e-5, rtol=1e-4)


def test_dare_drops_and_rescales_entries(adapters):
    dirs, deltas = adapters
    density = 0.5
    torch.manual_seed(0)
    got = merged_deltas(merge_adapters(tiny_llama(), dirs, "dare_linear", density=density, svd_rank=64))
    d0, d1 = deltas["model.layers.0.self_attn.q_proj"]
    # every entry is one of: both dropped, only one task kept, both kept (kept entries scaled by 1/density)
    candidates = torch.stack([torch.zeros_like(d0), d0, d1, d0 + d1]) / density
    error, choice = (candidates - got["model.layers.0.self_attn.q_proj"]).abs().min(dim=0)
    assert error.max() < 1e-4
    kept_first = ((choice == 1) | (choice == 3)).float().mean().item()
    kept_second = ((choice == 2) | (choice == 3)).float().mean().item()
    assert kept_first == pytest.approx(density, abs=0.05) and kept_second == pytest.approx(density, abs=0.05)


@pytest.mark.parametrize("combination", ["ta", "dare_ties"])
def test_saved_merged_adapter_reloads_with_plain_peft(adapters, tmp_path, combination):
    dirs, _ = adapters
    torch.manual_seed(0)
    model = merge_adapters(tiny_llama(), dirs, combination, density=0.7)
    expected = model(input_ids=IDS).logits
    assert not torch.allclose(expected, tiny_llama()(input_ids=IDS).logits, atol=1e-3)
    save_merged_adapter(model, tmp_path)
    reloaded = PeftModel.from_pretrained(tiny_llama(), str(tmp_path))
    torch.testing.assert_close(reloaded(input_ids=IDS).logits, expected, atol=1e-6, rtol=1e-5)


def test_bad_arguments_are_named(adapters):
    dirs, _ = adapters
    with pytest.raises(ValueError, match="combination must be one of"):
        merge_adapters(tiny_llama(), dirs, "svd")
    with pytest.raises(ValueError, match="1 weights for 2 adapters"):
        merge_adapters(tiny_llama(), dirs, "ta", [1.0])
    with pytest.raises(ValueError, match="density"):
        merge_adapters(tiny_llama(), dirs, "ties", density=0.0)
