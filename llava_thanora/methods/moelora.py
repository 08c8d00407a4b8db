"""`--method moelora`: the HydraLoRA-style MoE-LoRA of `llava_thanora.moelora` as a training method.

Same budget as LoRA. A rank-r LoRA on layers with shapes (d_in, d_out) trains `r * sum(d_in + d_out)` values; a
MoE-LoRA layer with rank r_m and K heads trains `r_m * d_in` (shared A) + `K * r_m * d_out` (heads) + `K * d_in`
(router). With `--moelora_r 0` (the default) r_m is the rank whose count is closest to the LoRA's at `--lora_r`:

    r_m = round((r * sum(d_in + d_out) - K * sum(d_in)) / (sum(d_in) + K * sum(d_out)))

For llava-1.5-7b (every linear layer of the language model, per decoder layer sum(d_in) = 35,584 and
sum(d_out) = 42,496) with r = 128 and K = 4 this gives r_m = 48: 10,009,600 trainable values per decoder layer
against LoRA's 9,994,240 (+0.15%). alpha is scaled with the rank (alpha_m = alpha * r_m / r), so the update has
the same scaling alpha / r as the LoRA rows.

The adapter cannot be merged (the router makes it input-dependent): the output dir holds `moelora_config.json`,
`moelora_model.safetensors` and `non_lora_trainables.safetensors`, which `loading.load_trained` reads back with
the router in place.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..flags import documented
from ..moelora import MoELoRAConfig, apply_moelora, load_moelora_weights, moelora_balance_loss, save_moelora
from .base import BuildContext, Method, load_non_lora, save_non_lora, split_trainable

logger = logging.getLogger("llava_thanora")


def lora_parameter_count(shapes: list[tuple[int, int]], r: int) -> int:
    """Trainable values of a rank-r LoRA on layers of (d_in, d_out)."""
    return r * sum(d_in + d_out for d_in, d_out in shapes)


def moelora_parameter_count(shapes: list[tuple[int, int]], r: int, num_experts: int) -> int:
    """Trainable values of a rank-r, K-head MoE-LoRA (shared A, K B heads, router) on layers of (d_in, d_out)."""
    return sum(r * d_in + num_experts * (r * d_out + d_in) for d_in, d_out in shapes)


def matched_rank(shapes: list[tuple[int, int]], lora_r: int, num_experts: int) -> int:
    """The MoE-LoRA rank whose trainable count is closest to a rank-`lora_r` LoRA's (at least 1)."""
    sum_in, sum_out = sum(s[0] for s in shapes), sum(s[1] for s in shapes)
    exact = (lora_parameter_count(shapes, lora_r) - num_experts * sum_in) / (sum_in + num_experts * sum_out)
    return max(1, round(exact))


@documented
class MoELoRAArguments:
    moelora_num_experts: int = 4
    """B heads per layer (HydraLoRA-style, shared A)."""
    moelora_balance_coef: float = 0.01
    """Weight of the router load-balancing loss."""
    moelora_r: int = 0
    """Rank of the shared A and of each B head; 0: the rank whose trainable parameter count is closest to a
    --lora_r LoRA on the same layers (same budget)."""

    def __post_init__(self) -> None:
        if self.moelora_num_experts < 1 or self.moelora_r < 0 or self.moelora_balance_coef < 0:
            raise ValueError(f"--moelora_num_experts must be >= 1, --moelora_r >= 0 and --moelora_balance_coef >= 0; "
                             f"got {self.moelora_num_experts}, {self.moelora_r}, {self.moelora_balance_coef}")


class MoELoRAMethod(Method):
    name = "moelora"
    arguments = MoELoRAArguments

    def build(self, model: nn.Module, ctx: BuildContext) -> nn.Module:
        args, a = self.args, ctx.model_args
        modules = dict(model.named_modules())
        shapes = [(modules[n].in_features, modules[n].out_features) for n in ctx.target_modules]
        k = args.moelora_num_experts
        r = args.moelora_r or matched_rank(shapes, a.lora_r, k)
        config = MoELoRAConfig(r=r, alpha=a.lora_alpha * r / a.lora_r, dropout=a.lora_dropout, num_experts=k,
                               target_modules=list(ctx.target_modules), balance_coef=args.moelora_balance_coef)
        logger.info(f"moelora: rank {r} x {k} heads, {moelora_parameter_count(shapes, r, k):,} trainable adapter "
                    f"values (a rank-{a.lora_r} LoRA: {lora_parameter_count(shapes, a.lora_r):,})")
        return apply_moelora(model, config)

    def extra_losses(self, model: nn.Module) -> dict[str, tuple[float, torch.Tensor]]:
        return {"moe_balance": (self.args.moelora_balance_coef, moelora_balance_loss(model))}

    def save(self, model, output_dir: str, trainable: dict[str, torch.Tensor]) -> None:
        _, others = split_trainable(trainable)  # adapter and router keys all hold "lora_"
        save_moelora(model, output_dir, state_dict=trainable)
        save_non_lora(output_dir, others)

    def load_trainable(self, model, checkpoint_dir: str) -> None:
        load_moelora_weights(model, checkpoint_dir)
        load_non_lora(model, checkpoint_dir)


__all__ = ["MoELoRAArguments", "MoELoRAMethod", "lora_parameter_count", "matched_rank", "moelora_parameter_count"]
