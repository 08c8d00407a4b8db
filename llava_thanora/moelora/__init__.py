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

from .apply import apply_moelora, merge_moelora, moelora_balance_loss, moelora_layers
from .io import CONFIG_NAME, WEIGHTS_NAME, load_moelora, load_moelora_weights, read_moelora_config, save_moelora
from .layer import MoELoRAConfig, MoELoRALinear, balance_loss

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
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
