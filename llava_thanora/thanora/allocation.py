"""Rank shares and per-task ranks of one layer (METHOD.md steps 4 and 5)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def rank_shares(entropies: Sequence[float], tau: float) -> list[float]:
    """`softmax(H / tau)` over tasks; `tau = inf` gives exactly uniform shares."""
    if len(entropies) == 0:
        raise ValueError("rank_shares needs at least one task entropy")
    if not tau > 0:
        raise ValueError(f"tau must be > 0 (inf allowed), got {tau}")
    if any(not math.isfinite(h) for h in entropies):
        raise ValueError(f"entropies must be finite, got {list(entropies)}")
    if math.isinf(tau):
        return [1.0 / len(entropies)] * len(entropies)
    top = max(entropies)
    # Subtracting the max keeps exp() in range for small tau.
    weights = [math.exp((h - top) / tau) for h in entropies]
    total = sum(weights)
    return [w / total for w in weights]


def allocate_ranks(
    entropies: Sequence[float], r: int, r_coop: int, tau: float, r_min: int = 1
) -> list[int]:
    """Split `r - r_coop` rank units among tasks in proportion to `softmax(H / tau)`.

    Largest-remainder rounding: every task gets `floor(share * r_spec)`, the leftover units go to the
    largest fractional parts (ties to the earlier task). Then any task below `r_min` is raised one
    unit at a time, each unit taken from the currently largest rank (ties: the later task, so the
    earlier task keeps the unit rounding gave it). The result sums to exactly `r - r_coop`.
    Uniform allocation: `tau = float('inf')`.
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
    shares = rank_shares(entropies, tau)

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
