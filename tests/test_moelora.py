"""MoE-LoRA baseline on a tiny random LlamaForCausalLM (hidden 64, 2 layers)."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from llava_thanora.moelora import (
    MoELoRAConfig,
    MoELoRALinear,
    apply_moelora,
    balance_loss,
    load_moelora,
    load_moelora_weights,
    merge_moelora,
    moelora_balance_loss,
    moelora_layers,
    save_moelora,
)

K = 3
TARGETS = ["q_proj", "v_proj", "down_proj"]


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


def moe_config(**overrides) -> MoELoRAConfig:
    return MoELoRAConfig(**{"r": 4, "alpha": 8, "dropout": 0.0, "num_experts": K, "target_modules": TARGETS, **overrides})


def randomize_heads(model: torch.nn.Module) -> None:
    """Give every B head a nonzero value, as after some training."""
    torch.manual_seed(1)
    for layer in moelora_layers(model):
        torch.nn.init.normal_(layer.lora_B.weight, std=0.05)


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(2)
    ids = torch.randint(0, 96, (2, 12))
    return {"input_ids": ids, "labels": ids.clone()}


def test_targets_wrapped_and_only_adapters_train():
    model = apply_moelora(tiny_llama(), moe_config())
    layers = dict(model.named_modules())
    assert isinstance(layers["model.layers.1.self_attn.q_proj"], MoELoRALinear)
    assert not isinstance(layers["model.layers.1.self_attn.k_proj"], MoELoRALinear)
    assert len(moelora_layers(model)) == 2 * len(TARGETS)
    trainable = {n.rsplit(".", 2)[-2] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"lora_A", "lora_B", "lora_router"}
    regex = apply_moelora(tiny_llama(), moe_config(target_modules=r".*layers\.0\.mlp\.(up|gate)_proj"))
    assert len(moelora_layers(regex)) == 2
    with pytest.raises(ValueError, match="no nn.Linear module matches"):
        apply_moelora(tiny_llama(), moe_config(target_modules=["nope"]))


def test_router_probabilities_sum_to_one():
    layer = moelora_layers(apply_moelora(tiny_llama(), moe_config()))[0]
    probs = layer.route(torch.randn(2, 5, 64))
    assert probs.shape == (2, 5, K)
    assert (probs > 0).all()
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 5), atol=1e-6, rtol=0)


def test_zero_heads_reproduce_base_logits_exactly(batch):
    base_logits = tiny_llama()(input_ids=batch["input_ids"]).logits
    model = apply_moelora(tiny_llama(), moe_config())
    assert torch.equal(model(input_ids=batch["input_ids"]).logits, base_logits)


def test_balance_loss_values():
    uniform = torch.full((10, K), 1.0 / K)
    collapsed = torch.nn.functional.one_hot(torch.zeros(10, dtype=torch.long), K).float()
    spread = torch.nn.functional.one_hot(torch.arange(9) % K, K).float()  # confident but evenly spread
    assert balance_loss(uniform).item() == pytest.approx(1.0)
    assert balance_loss(collapsed).item() == pytest.approx(float(K))
    assert balance_loss(spread).item() == pytest.approx(1.0)
    # 1 + squared coefficient of variation (population variance) of the importances
    probs = torch.softmax(torch.randn(50, K), dim=-1)
    importance = probs.sum(0)
    cv2 = importance.var(unbiased=False) / importance.mean() ** 2
    assert balance_loss(probs).item() == pytest.approx(1.0 + cv2.item(), rel=1e-5)
    # masked positions (padding) are ignored: only the evenly spread tokens count
    padded = torch.cat([spread, collapsed[:4]])
    mask = torch.cat([torch.ones(9), torch.zeros(4)])
    assert balance_loss(padded, mask).item() == pytest.approx(1.0)
    assert balance_loss(padded).item() > 1.1


def test_model_balance_loss_uniform_router_and_eval(batch):
    model = apply_moelora(tiny_llama(), moe_config()).train()
    for layer in moelora_layers(model):
        torch.nn.init.zeros_(layer.lora_router.weight)  # uniform routing everywhere
    model(input_ids=batch["input_ids"])
    assert moelora_balance_loss(model).item() == pytest.approx(1.0)
    model.eval()
    model(input_ids=batch["input_ids"])  # a new call clears the last training forward's losses
    assert moelora_balance_loss(model).item() == 0.0


def test_attention_mask_excludes_padding_from_balance_loss():
    model = apply_moelora(tiny_llama(), moe_config()).train()
    torch.manual_seed(3)
    ids = torch.randint(0, 96, (1, 8))
    model(input_ids=ids, attention_mask=torch.ones_like(ids))
    unpadded = moelora_balance_loss(model).item()
    # Right padding with a causal model leaves the real tokens' hidden states unchanged.
    padded_ids = torch.cat([ids, torch.randint(0, 96, (1, 5))], dim=1)
    mask = torch.cat([torch.ones(1, 8), torch.zeros(1, 5)], dim=1).long()
    model(input_ids=padded_ids, attention_mask=mask)
    assert moelora_balance_loss(model).item() == pytest.approx(unpadded, rel=1e-4)
    model(input_ids=padded_ids)
    assert moelora_balance_loss(model).item() != pytest.approx(unpadded, rel=1e-4)


def test_gradients_reach_router_A_and_every_head(batch):
    model = apply_moelora(tiny_llama(), moe_config()).train()
    randomize_heads(model)
    out = model(**batch)
    (out.loss + 0.01 * moelora_balance_loss(model)).backward()
    for layer in moelora_layers(model):
        assert layer.lora_router.weight.grad.abs().sum() > 0
        assert layer.lora_A.weight.grad.abs().sum() > 0
        for head in layer.lora_B.weight.grad.split(layer.r, dim=1):
            assert head.abs().sum() > 0
        assert layer.base_layer.weight.grad is None


def test_gradient_checkpointing_gives_same_gradients(batch):
    grads = []
    for checkpointing in (False, True):
        model = apply_moelora(tiny_llama(), moe_config()).train()
        randomize_heads(model)
        if checkpointing:
            model.activation_checkpointing_enable()  # non-reentrant by default in transformers 5
        loss = model(**batch).loss + 0.5 * moelora_balance_loss(model)
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad]))
    torch.testing.assert_close(grads[1], grads[0], atol=1e-6, rtol=1e-5)
    # reentrant checkpointing runs the first forward without grad: refuse instead of a loss that cannot train
    model = apply_moelora(tiny_llama(), moe_config()).train()
    model.activation_checkpointing_enable({"use_reentrant": True})
    model(**batch)
    with pytest.raises(RuntimeError, match="use_reentrant"):
        moelora_balance_loss(model)


def test_training_lowers_the_loss(batch):
    model = apply_moelora(tiny_llama(), moe_config()).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    losses = []
    for _ in range(20):
        lm_loss = model(**batch).loss
        (lm_loss + 0.01 * moelora_balance_loss(model)).backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(lm_loss.item())
    assert losses[-1] < 0.85 * losses[0], losses  # about 4.6 -> 3.55 on this random base


def test_save_load_round_trip(tmp_path, batch):
    model = apply_moelora(tiny_llama(), moe_config())
    randomize_heads(model)
    expected = model(input_ids=batch["input_ids"]).logits
    save_moelora(model, tmp_path / "a")
    # a gathered full-model state dict (what ZeRO-3 hands over) gives the same files
    save_moelora(model, tmp_path / "b", state_dict={k: v.clone() for k, v in model.state_dict().items()})
    for sub in ("a", "b"):
        loaded = load_moelora(tiny_llama(), tmp_path / sub)
        assert torch.equal(loaded(input_ids=batch["input_ids"]).logits, expected)
    resumed = apply_moelora(tiny_llama(), moe_config())  # resuming: the model is already prepared
    load_moelora_weights(resumed, tmp_path / "a")
    assert torch.equal(resumed(input_ids=batch["input_ids"]).logits, expected)
    with pytest.raises(ValueError, match="does not fit the model"):
        load_moelora_weights(apply_moelora(tiny_llama(), moe_config(target_modules=["q_proj"])), tmp_path / "a")
    with pytest.raises(ValueError, match="ZeRO-3"):
        save_moelora(model, tmp_path / "c", state_dict={"x.lora_A.weight": torch.empty(0)})
    (tmp_path / "a" / "moelora_config.json").write_text('{"method": "moelora", "rank": 4}')
    with pytest.raises(ValueError, match="moelora_config.json"):
        load_moelora(tiny_llama(), tmp_path / "a")


def test_merge_raises():
    model = apply_moelora(tiny_llama(), moe_config())
    with pytest.raises(RuntimeError, match="router"):
        merge_moelora(model)
