"""Heterogeneity score: normalized entropy of a singular-value spectrum (METHOD.md step 3)."""

from __future__ import annotations

import math

import torch


def normalized_entropy(singular_values: torch.Tensor, squared: bool = False) -> float:
    """Normalized Shannon entropy `H = -(sum_i p_i log p_i) / log k` of a spectrum, in [0, 1].

    `p_i = s_i / sum_j s_j` (or `s_i^2 / sum_j s_j^2` when `squared`), with `0 * log 0 = 0`, over all
    k given values (zeros included in k: a rank-deficient matrix has a less spread spectrum).
    A flat spectrum gives 1, a single nonzero value gives 0.

    Degenerate cases, documented choices:
      * k == 1: there is no spread to measure and `log k = 0`; we return 0.0. Every task of a layer
        has the same k, so this never biases an allocation (all tasks tie).
      * all values zero (the layer never sees a nonzero input): no direction carries information; 0.0.
    Negative or non-finite values raise ValueError (singular values are >= 0).
    """
    s = singular_values.detach().flatten().to(torch.float64)
    if s.numel() == 0:
        raise ValueError("normalized_entropy needs at least one singular value")
    if not torch.isfinite(s).all():
        raise ValueError("normalized_entropy got non-finite singular values")
    if (s < 0).any():
        raise ValueError(f"normalized_entropy got negative singular values (min {s.min().item():.3g})")
    k = s.numel()
    if squared:
        s = s * s
    total = s.sum()
    if k == 1 or total <= 0:
        return 0.0
    p = s / total
    # xlogy defines 0 * log 0 = 0.
    entropy = -torch.special.xlogy(p, p).sum().item()
    return min(max(entropy / math.log(k), 0.0), 1.0)
