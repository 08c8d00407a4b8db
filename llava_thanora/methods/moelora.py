"""MoE-LoRA baseline: a HydraLoRA-style mixture of LoRA experts (Tian et al., NeurIPS 2024, arXiv 2404.19245).

Every adapted ``nn.Linear`` becomes a :class:`MoELoRALinear`::

    y = base(x) + s * sum_k g_k(x) * B_k A dropout(x),    g(x) = softmax(R x),    s = alpha / r

with one shared down-projection ``A`` (r x d_in), ``K`` up-projection heads ``B_k`` (d_out x r, zero at
init, so the model starts as the base model) and a per-token dense softmax router ``R`` (K x d_in, no
bias). The heads live in one ``lora_B`` Linear of width ``K * r`` (head k = columns ``k*r:(k+1)*r``), so
the mixture is one matmul: ``sum_k g_k B_k h = B_cat (g ⊗ h)`` with ``h = A dropout(x)``.

The router makes the update input-dependent, so unlike LoRA (and ThanoRA) it can never be folded into the
weights: inference keeps the router, which is the overhead that ``bench/bench_inference.py`` measures.

Balance loss (ours, documented choice). For the routing probabilities ``g`` of one layer and the mean
routing probability over the real (non-padding) tokens ``P_k = mean_t g_k(x_t)``::

    L_bal = K * sum_k P_k^2  =  1 + CV^2(importance)

It is the Switch-Transformer loss ``K * sum_k f_k P_k`` (Fedus et al. 2021, eq. 4) with the hard top-1
fractions ``f`` replaced by their soft counterpart ``P`` (HydraLoRA routes densely, there is no top-1), and
it equals one plus the squared coefficient of variation (population variance) of the expert importances
``sum_t g_k`` used by Shazeer et al. 2017 and defined (``cv_squared``) in HydraLoRA's code. It lies in
``[1, K]``: 1 exactly when the experts get equal mean weight, K when every token goes to one expert. It
balances load, not per-token certainty: confident tokens spread evenly over the experts also score 1.
:func:`moelora_balance_loss` returns the mean over the layers that ran; the trainer adds
``balance_coef * moelora_balance_loss(model)`` to the LM loss.

Padding: :func:`apply_moelora` installs a forward pre-hook on the model it is given that hands the
``attention_mask`` keyword of each call to every layer. A layer uses it when its shape equals the layer's
token shape (the language model's layers); other layers (e.g. a vision tower, whose patches have no
padding) average over all positions. The mask stays until the next call, so the recomputation done by
gradient checkpointing sees the same mask as the original forward.

DeepSpeed ZeRO-3: every weight is an ordinary parameter of a submodule that the forward calls, so ZeRO-3
gathers it there; shapes come from ``in_features``/``out_features``, never from (partitioned) weights.
Gradient checkpointing: use the non-reentrant kind (the transformers 5 default); with ``use_reentrant=True``
the first forward runs without grad, and :func:`moelora_balance_loss` raises instead of returning a loss
that cannot train the router.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

CONFIG_NAME = "moelora_config.json"
WEIGHTS_NAME = "moelora_model.safetensors"
ADAPTER_KEY = re.compile(r"\.(lora_A|lora_B|lora_router)\.weight$")


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


def _is_target(name: str, targets: list[str] | str) -> bool:
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)


def moelora_layers(model: nn.Module) -> list[MoELoRALinear]:
    """All MoE-LoRA layers of ``model``, in module order."""
    return [m for m in model.modules() if isinstance(m, MoELoRALinear)]


def _share_call_state(layers: list[MoELoRALinear]):
    """Forward pre-hook: start every call with no recorded balance loss and this call's padding mask."""

    def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
        mask = kwargs.get("attention_mask")
        mask = mask if isinstance(mask, torch.Tensor) and mask.dim() == 2 else None
        for layer in layers:
            layer.token_mask = mask
            layer.last_balance_loss = None

    return hook


def apply_moelora(model: nn.Module, config: MoELoRAConfig) -> nn.Module:
    """Replace the target ``nn.Linear`` modules of ``model`` in place by :class:`MoELoRALinear`.

    Every parameter of ``model`` is frozen first (as peft does); only the adapters and routers train, and
    the caller may unfreeze other modules (e.g. a projector) afterwards. Returns ``model``.
    """
    if moelora_layers(model):
        raise ValueError("apply_moelora: the model already has MoE-LoRA layers")
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and _is_target(name, config.target_modules)
    ]
    if not targets:
        raise ValueError(f"apply_moelora: no nn.Linear module matches target_modules={config.target_modules!r}")
    for param in model.parameters():
        param.requires_grad_(False)
    for name, linear in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, MoELoRALinear(linear, config))
    model.register_forward_pre_hook(_share_call_state(moelora_layers(model)), with_kwargs=True)
    model.moelora_config = config
    return model


def moelora_balance_loss(model: nn.Module) -> torch.Tensor:
    """Mean balance loss over the MoE-LoRA layers that ran in the model's last training-mode forward.

    Returns a zero scalar when no layer recorded one (e.g. in eval mode). Not multiplied by
    ``balance_coef``.
    """
    layers = moelora_layers(model)
    losses = [layer.last_balance_loss for layer in layers if layer.last_balance_loss is not None]
    if not losses:
        device = layers[0].lora_router.weight.device if layers else None
        return torch.zeros((), device=device)
    loss = torch.stack(losses).mean()
    if torch.is_grad_enabled() and not loss.requires_grad and layers[0].lora_router.weight.requires_grad:
        raise RuntimeError(
            "moelora_balance_loss: the recorded balance losses carry no gradient. The forward ran under "
            "torch.no_grad, which is what reentrant gradient checkpointing does; enable checkpointing with "
            "gradient_checkpointing_kwargs={'use_reentrant': False}."
        )
    return loss


def merge_moelora(model: nn.Module) -> None:
    """Always raises, explaining why a router-based mixture cannot be merged (see :meth:`MoELoRALinear.merge`)."""
    layers = moelora_layers(model)
    if not layers:
        raise ValueError("merge_moelora: the model has no MoE-LoRA layers")
    layers[0].merge()


def save_moelora(model: nn.Module, output_dir: str | Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
    """Write ``moelora_config.json`` and ``moelora_model.safetensors`` (adapter and router weights only).

    ``state_dict``: an already gathered state dict (any superset of the adapter keys, e.g. the full model's
    under DeepSpeed ZeRO-3, whose module parameters are empty outside forward). Defaults to ``model``'s own.
    """
    config = getattr(model, "moelora_config", None)
    if config is None:
        raise ValueError("save_moelora: the model was not prepared with apply_moelora")
    source = model.state_dict() if state_dict is None else state_dict
    tensors = {k: v.detach().cpu().contiguous() for k, v in source.items() if ADAPTER_KEY.search(k)}
    if not tensors:
        raise ValueError("save_moelora: no lora_A / lora_B / lora_router weights in the state dict")
    empty = [k for k, v in tensors.items() if v.numel() == 0]
    if empty:
        raise ValueError(
            f"save_moelora: {len(empty)} adapter tensors are empty (e.g. {empty[0]}); under DeepSpeed ZeRO-3 pass "
            "the gathered state dict (state_dict=...) instead of reading the partitioned module"
        )
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    payload = {"method": "moelora", **dataclasses.asdict(config)}
    (output_dir / CONFIG_NAME).write_text(json.dumps(payload, indent=2) + "\n")
    save_file(tensors, str(output_dir / WEIGHTS_NAME), metadata={"format": "pt"})


def read_moelora_config(adapter_dir: str | Path) -> MoELoRAConfig:
    """The :class:`MoELoRAConfig` saved in ``adapter_dir``; errors name the file."""
    config_path = Path(adapter_dir) / CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"MoE-LoRA: missing {config_path}")
    try:
        payload = json.loads(config_path.read_text())
        if payload.pop("method", None) != "moelora":
            raise ValueError("'method' is not 'moelora'")
        return MoELoRAConfig(**payload)
    except (ValueError, TypeError) as err:  # JSONDecodeError is a ValueError
        raise ValueError(f"MoE-LoRA: bad config {config_path}: {err}") from err


def load_moelora_weights(model: nn.Module, adapter_dir: str | Path) -> None:
    """Load the saved adapter and router weights into a model already prepared by :func:`apply_moelora`
    (e.g. to resume training); every adapter tensor must be present, and nothing else."""
    weights_path = Path(adapter_dir) / WEIGHTS_NAME
    if not weights_path.is_file():
        raise FileNotFoundError(f"MoE-LoRA: missing {weights_path}")
    tensors = load_file(str(weights_path))
    expected = {k for k in model.state_dict() if ADAPTER_KEY.search(k)}
    missing, unexpected = sorted(expected - tensors.keys()), sorted(tensors.keys() - expected)
    if missing or unexpected:
        raise ValueError(
            f"MoE-LoRA: {weights_path} does not fit the model: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    model.load_state_dict(tensors, strict=False)


def load_moelora(base_model: nn.Module, adapter_dir: str | Path) -> nn.Module:
    """Apply the saved MoE-LoRA of ``adapter_dir`` to ``base_model`` (in place) and load its weights."""
    model = apply_moelora(base_model, read_moelora_config(adapter_dir))
    load_moelora_weights(model, adapter_dir)
    return model


__all__ = [
    "MoELoRAConfig",
    "MoELoRALinear",
    "apply_moelora",
    "balance_loss",
    "load_moelora",
    "load_moelora_weights",
    "merge_moelora",
    "moelora_balance_loss",
    "moelora_layers",
    "read_moelora_config",
    "save_moelora",
]
