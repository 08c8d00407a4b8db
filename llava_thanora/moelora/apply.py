"""Put MoE-LoRA layers into any model, and read their balance loss after a forward."""

from __future__ import annotations

import re

import torch
from torch import nn

from .layer import MoELoRAConfig, MoELoRALinear


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
