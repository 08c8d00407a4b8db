"""From a layer's task spectra to its task ranks (METHOD.md steps 3, 4 and 5), in the order they happen:

    normalized_entropy(s_t)        heterogeneity score H_t of each task's spectrum
    rank_shares(H, tau)            softmax(H_t / tau) over the tasks
    allocate_ranks(H, r, ...)      largest-remainder ranks that sum to r - r_coop, each >= r_min

A task that never reached a layer has entropy None there: it gets r_min (see `allocate_ranks`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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


def check_tau(tau: float) -> None:
    """The one check of the softmax temperature (ThanoRAConfig and rank_shares both use it)."""
    if not tau > 0:
        raise ValueError(f"tau must be > 0 (inf allowed), got {tau}")


def rank_shares(entropies: Sequence[float | None], tau: float) -> list[float | None]:
    """`softmax(H / tau)` over tasks; `tau = inf` gives exactly uniform shares.

    A task whose entropy is None (it never reached the layer, see `allocate_ranks`) has no share (None); the
    others' shares are the softmax over them alone, so they still sum to 1.
    """
    if len(entropies) == 0:
        raise ValueError("rank_shares needs at least one task entropy")
    check_tau(tau)
    present = [h for h in entropies if h is not None]
    if any(not math.isfinite(h) for h in present):
        raise ValueError(f"entropies must be finite, got {list(entropies)}")
    if not present:
        return [None] * len(entropies)
    if math.isinf(tau):
        weights = [1.0] * len(present)
    else:
        top = max(present)
        # Subtracting the max keeps exp() in range for small tau.
        weights = [math.exp((h - top) / tau) for h in present]
    total = sum(weights)
    shares = iter(w / total for w in weights)
    return [None if h is None else next(shares) for h in entropies]


def allocate_ranks(
    entropies: Sequence[float | None], r: int, r_coop: int, tau: float, r_min: int = 1
) -> list[int]:
    """Split `r - r_coop` rank units among tasks in proportion to `softmax(H / tau)`.

    Largest-remainder rounding: every task gets `floor(share * r_spec)`, the leftover units go to the
    largest fractional parts (ties to the earlier task). Then any task below `r_min` is raised one
    unit at a time, each unit taken from the currently largest rank (ties: the later task, so the
    earlier task keeps the unit rounding gave it). The result sums to exactly `r - r_coop`.
    Uniform allocation: `tau = float('inf')`.

    A task with entropy None sent no token through the layer (e.g. a text-only task and a vision-tower
    layer): it gets exactly `r_min` there, and the other tasks share the rest as above. When no task has an
    entropy, the layer is split uniformly.
    """
    num_tasks = len(entropies)
    if num_tasks == 0:
        raise ValueError("allocate_ranks needs at least one task entropy")
    if r_coop < 0 or r_coop > r:
        raise ValueError(f"r_coop must be in [0, r={r}], got {r_coop}")
    if r_min < 0:
        raise ValueError(f"r_min must be >= 0, got {r_min}")
    r_spec = r - r_coop
    if r_spec < num_tasks * r_min:
        raise ValueError(
            f"cannot give {num_tasks} tasks at least r_min={r_min} each from r - r_coop = {r} - {r_coop} = {r_spec}; "
            "increase r or lower r_coop / r_min"
        )
    missing = [t for t, h in enumerate(entropies) if h is None]
    if missing and len(missing) < num_tasks:
        present = [t for t in range(num_tasks) if entropies[t] is not None]
        sub = allocate_ranks([entropies[t] for t in present], r - len(missing) * r_min, r_coop, tau, r_min)
        ranks = [r_min] * num_tasks
        for t, rank in zip(present, sub):
            ranks[t] = rank
        return ranks
    shares = rank_shares([0.0] * num_tasks if missing else entropies, float("inf") if missing else tau)

    quotas = [share * r_spec for share in shares]
    ranks = [math.floor(q) for q in quotas]
    leftover = r_spec - sum(ranks)
    # sorted() is stable, so equal remainders keep task order: ties go to the earlier task.
    by_remainder = sorted(range(num_tasks), key=lambda t: -(quotas[t] - ranks[t]))
    for t in by_remainder[:leftover]:
        ranks[t] += 1

    for t in range(num_tasks):
        while ranks[t] < r_min:
            # max over reversed indices picks the later task among equal largest ranks.
            donor = max(reversed(range(num_tasks)), key=lambda i: ranks[i])
            ranks[donor] -= 1
            ranks[t] += 1
    assert sum(ranks) == r_spec and min(ranks) >= r_min
    return ranks
