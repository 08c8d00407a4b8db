"""MoE-LoRA's pieces: the config, the balance loss of one layer, and the `MoELoRALinear` layer itself."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class MoELoRAConfig:
    """Hyper-parameters of the MoE-LoRA baseline."""

    r: int = 8
    """Rank of the shared ``A`` and of every ``B`` head."""
    alpha: float = 16.0
    """LoRA scaling numerator: the update is multiplied by ``alpha / r``."""
    dropout: float = 0.05
    """Dropout on the adapter's input (not on the router's input), as in peft's LoRA."""
    num_experts: int = 4
    """Number ``K`` of ``B`` heads (experts) per layer."""
    target_modules: list[str] | str = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    """Which ``nn.Linear`` modules to adapt: a list of name suffixes (``"q_proj"`` matches ``"...attn.q_proj"``)
    or a regex string that must match the full module name, as in peft."""
    balance_coef: float = 0.01
    """Weight of the balance loss in the training loss (Switch Transformer's 0.01); read by the trainer."""

    def __post_init__(self) -> None:
        if self.r < 1 or self.num_experts < 1:
            raise ValueError(f"MoELoRAConfig needs r >= 1 and num_experts >= 1, got r={self.r}, K={self.num_experts}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"MoELoRAConfig.dropout must be in [0, 1), got {self.dropout}")
        if isinstance(self.target_modules, tuple):
            self.target_modules = list(self.target_modules)


def balance_loss(probs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``K * sum_k P_k^2`` for routing probabilities ``probs`` [..., K], averaged over tokens where ``mask`` [...]
    is nonzero (all tokens if ``mask`` is None). Ranges from 1 (balanced) to K (collapsed)."""
    probs = probs.float().reshape(-1, probs.shape[-1])
    if mask is None:
        mean_probs = probs.mean(dim=0)
    else:
        weights = mask.reshape(-1, 1).to(probs.dtype)
        mean_probs = (probs * weights).sum(dim=0) / weights.sum().clamp(min=1.0)
    return probs.shape[-1] * mean_probs.pow(2).sum()


class MoELoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a shared-A, K-head LoRA mixed by a per-token softmax router."""

    def __init__(self, base_layer: nn.Linear, config: MoELoRAConfig) -> None:
        super().__init__()
        d_in, d_out, r, k = base_layer.in_features, base_layer.out_features, config.r, config.num_experts
        factory = {"dtype": base_layer.weight.dtype, "device": base_layer.weight.device}
        self.base_layer = base_layer
        self.lora_A = nn.Linear(d_in, r, bias=False, **factory)
        self.lora_B = nn.Linear(k * r, d_out, bias=False, **factory)
        self.lora_router = nn.Linear(d_in, k, bias=False, **factory)
        self.lora_dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.num_experts, self.r, self.scaling = k, r, config.alpha / r
        # A and the router keep nn.Linear's default (Kaiming-uniform) init, as LoRA and HydraLoRA do; B = 0
        # makes the update zero at step 0 whatever the router says.
        nn.init.zeros_(self.lora_B.weight)
        self.token_mask: torch.Tensor | None = None
        self.last_balance_loss: torch.Tensor | None = None

    @property
    def weight(self) -> torch.Tensor:
        """The frozen base weight (some model code reads ``module.weight`` for dtype or device)."""
        return self.base_layer.weight

    @property
    def bias(self) -> torch.Tensor | None:
        """The frozen base bias."""
        return self.base_layer.bias

    def route(self, x: torch.Tensor) -> torch.Tensor:
        """Routing probabilities ``g(x)`` [..., K], computed in float32 so they sum to one."""
        return torch.softmax(self.lora_router(x.to(self.lora_router.weight.dtype)).float(), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.base_layer(x)
        adapter_in = x.to(self.lora_A.weight.dtype)
        probs = self.route(adapter_in)
        if self.training:
            mask = self.token_mask
            usable = mask is not None and mask.dim() == x.dim() - 1 and tuple(mask.shape) == tuple(x.shape[:-1])
            self.last_balance_loss = balance_loss(probs, mask.to(x.device) if usable else None)
        hidden = self.lora_A(self.lora_dropout(adapter_in))  # [..., r]
        mixed = probs.to(hidden.dtype).unsqueeze(-1) * hidden.unsqueeze(-2)  # [..., K, r]
        update = self.lora_B(mixed.flatten(-2)) * self.scaling
        return result + update.to(result.dtype)

    def merge(self) -> None:
        """Always raises: the update depends on the input through the router."""
        raise RuntimeError(
            "MoE-LoRA cannot be merged into the base weights: its update sum_k g_k(x) B_k A x depends on the "
            "input through the router g(x), so no single weight matrix reproduces it. Inference keeps the router "
            "(use ThanoRA or plain LoRA for a mergeable, zero-overhead adapter)."
        )

    def extra_repr(self) -> str:
        return f"r={self.r}, num_experts={self.num_experts}, scaling={self.scaling:g}"
