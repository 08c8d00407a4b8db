"""ThanoRA's three formulas against hand-computed values: entropy, rank allocation, SPR penalty."""

import itertools
import math

import pytest
import torch

from llava_thanora.thanora import ThanoRAConfig, allocate_ranks, normalized_entropy, rank_shares, spr_penalty


# ---------------------------------------------------------------- normalized_entropy
def test_entropy_extremes_and_hand_value():
    assert normalized_entropy(torch.ones(7)) == pytest.approx(1.0)
    assert normalized_entropy(torch.tensor([5.0, 0.0, 0.0, 0.0])) == pytest.approx(0.0)
    # p = (0.75, 0.25): H = -(0.75 ln 0.75 + 0.25 ln 0.25) / ln 2
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(2)
    assert normalized_entropy(torch.tensor([3.0, 1.0])) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(0.811278, abs=1e-6)


def test_entropy_zeros_count_in_k():
    # Two equal values among k = 4: H = ln 2 / ln 4 = 0.5 (0 log 0 = 0).
    assert normalized_entropy(torch.tensor([2.0, 2.0, 0.0, 0.0])) == pytest.approx(0.5)


def test_entropy_squared_switch():
    # p ~ s^2 = (4, 1) / 5
    expected = -(0.8 * math.log(0.8) + 0.2 * math.log(0.2)) / math.log(2)
    assert normalized_entropy(torch.tensor([2.0, 1.0]), squared=True) == pytest.approx(expected)


def test_entropy_degenerate_cases():
    assert normalized_entropy(torch.zeros(5)) == 0.0
    assert normalized_entropy(torch.tensor([3.0])) == 0.0
    with pytest.raises(ValueError, match="negative"):
        normalized_entropy(torch.tensor([1.0, -0.1]))
    with pytest.raises(ValueError, match="non-finite"):
        normalized_entropy(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="at least one"):
        normalized_entropy(torch.tensor([]))


# ---------------------------------------------------------------- allocate_ranks
def test_allocation_hand_example():
    # shares softmax([9, 8]) = (0.731, 0.269); quotas of 10: 7.31, 2.69 -> floors 7, 2; leftover to task 2.
    shares = rank_shares([0.9, 0.8], 0.1)
    assert shares[0] == pytest.approx(math.e / (math.e + 1))
    assert allocate_ranks([0.9, 0.8], r=12, r_coop=2, tau=0.1) == [7, 3]


def test_allocation_ties_go_to_earlier_task():
    assert allocate_ranks([0.3, 0.3, 0.3], r=4, r_coop=0, tau=0.1) == [2, 1, 1]
    assert allocate_ranks([0.5, 0.5], r=8, r_coop=2, tau=0.1) == [3, 3]


def test_allocation_uniform_with_infinite_tau():
    assert rank_shares([0.1, 0.9, 0.5], float("inf")) == [1 / 3] * 3
    assert allocate_ranks([0.1, 0.9, 0.5], r=7, r_coop=0, tau=float("inf")) == [3, 2, 2]


def test_allocation_raises_small_ranks_to_r_min():
    # Rounding gives [6, 0, 0]; units come back from the largest rank.
    assert allocate_ranks([1.0, 0.0, 0.0], r=6, r_coop=0, tau=0.05, r_min=0) == [6, 0, 0]
    assert allocate_ranks([1.0, 0.0, 0.0], r=6, r_coop=0, tau=0.05) == [4, 1, 1]
    assert allocate_ranks([1.0, 0.0, 0.0], r=6, r_coop=0, tau=0.05, r_min=2) == [2, 2, 2]
    # Largest ranks tie at 3: the unit is taken from the later task.
    assert allocate_ranks([1.0, 1.0, 0.0], r=6, r_coop=0, tau=0.01) == [3, 2, 1]


def test_allocation_sums_exactly():
    gen = torch.Generator().manual_seed(0)
    for num_tasks, r, tau in itertools.product([1, 2, 3, 5, 16], [16, 33, 64], [0.01, 0.1, 1.0]):
        entropies = torch.rand(num_tasks, generator=gen).tolist()
        r_coop = r // (num_tasks + 1)
        ranks = allocate_ranks(entropies, r, r_coop, tau)
        assert sum(ranks) == r - r_coop and min(ranks) >= 1


def test_allocation_when_a_task_never_reached_the_layer():
    # The missing task gets r_min = 1; the others split r_spec - 1 = 9 by softmax([9, 8]): quotas 6.58, 2.42.
    assert allocate_ranks([0.9, None, 0.8], r=12, r_coop=2, tau=0.1) == [7, 1, 2]
    shares = rank_shares([0.9, None, 0.8], 0.1)
    assert shares[1] is None and shares[0] == pytest.approx(math.e / (math.e + 1)) and sum(shares[::2]) == 1.0
    assert allocate_ranks([None, 0.5], r=8, r_coop=2, tau=0.1, r_min=2) == [2, 4]
    # No task reached it: uniform split, no shares.
    assert allocate_ranks([None, None, None], r=7, r_coop=0, tau=0.1) == [3, 2, 2]
    assert rank_shares([None, None], 0.1) == [None, None]


def test_allocation_errors():
    with pytest.raises(ValueError, match="at least one"):
        allocate_ranks([], 8, 0, 0.1)
    with pytest.raises(ValueError, match="tau"):
        allocate_ranks([0.1, 0.2], 8, 0, 0.0)
    with pytest.raises(ValueError, match="tau"):
        allocate_ranks([0.1, 0.2], 8, 0, -1.0)
    with pytest.raises(ValueError, match="r_min=1"):
        allocate_ranks([0.1, 0.2, 0.3], 4, 2, 0.1)
    with pytest.raises(ValueError, match="r_coop"):
        allocate_ranks([0.1], 4, 5, 0.1)


# ---------------------------------------------------------------- spr_penalty
def naive_penalty(A_blocks, B_blocks, side):
    total = 0.0
    a_hat = [a / a.norm(dim=1, keepdim=True) for a in A_blocks]
    b_hat = [b / b.norm(dim=0, keepdim=True) for b in B_blocks]
    for i, j in itertools.combinations(range(len(A_blocks)), 2):
        if "A" in side:
            total = total + (a_hat[i] @ a_hat[j].T).pow(2).sum()
        if "B" in side:
            total = total + (b_hat[i].T @ b_hat[j]).pow(2).sum()
    return total


def random_blocks(ranks, d_in=12, d_out=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    A = [torch.randn(r, d_in, generator=gen, dtype=torch.float64, requires_grad=True) for r in ranks]
    B = [torch.randn(d_out, r, generator=gen, dtype=torch.float64, requires_grad=True) for r in ranks]
    return A, B


@pytest.mark.parametrize("side", ["A", "B", "AB"])
def test_penalty_equals_pairwise_loop(side):
    A, B = random_blocks([2, 3, 1, 4])
    value = spr_penalty(A, B, side)
    assert value.item() > 0.1
    assert value.item() == pytest.approx(naive_penalty(A, B, side).item(), rel=1e-10)


def test_penalty_sides_add_up_and_are_scale_free():
    A, B = random_blocks([2, 2, 3], seed=1)
    both = spr_penalty(A, B, "AB")
    assert both.item() == pytest.approx((spr_penalty(A, B, "A") + spr_penalty(A, B, "B")).item())
    scaled = spr_penalty([3.0 * a for a in A], [0.5 * b for b in B], "AB")
    assert scaled.item() == pytest.approx(both.item())


def test_penalty_zero_for_orthogonal_blocks():
    eye_in, eye_out = torch.eye(8, dtype=torch.float64), torch.eye(6, dtype=torch.float64)
    A = [2.0 * eye_in[0:2], eye_in[2:5], eye_in[5:6]]
    B = [eye_out[:, 0:2], 3.0 * eye_out[:, 2:5], eye_out[:, 5:6]]
    assert spr_penalty(A, B, "AB").item() == pytest.approx(0.0, abs=1e-14)
    # Same row space shared by two tasks -> positive; zero B columns contribute nothing (no NaN).
    A_overlap = [eye_in[0:2], eye_in[1:3]]
    B_zero = [torch.zeros(6, 2, dtype=torch.float64)] * 2
    assert spr_penalty(A_overlap, B_zero, "A").item() == pytest.approx(1.0)
    assert spr_penalty(A_overlap, B_zero, "B").item() == 0.0


def test_penalty_gradient_reaches_every_block():
    A, B = random_blocks([1, 2, 3], seed=2)
    spr_penalty(A, B, "AB").backward()
    grads = [t.grad.clone() for t in A + B]
    for tensor in A + B:
        tensor.grad = None
    naive_penalty(A, B, "AB").backward()
    for tensor, grad in zip(A + B, grads):
        assert grad.abs().sum() > 0
        torch.testing.assert_close(grad, tensor.grad, rtol=1e-9, atol=1e-12)


def soft_naive_penalty(A_blocks, B_blocks, mu, scaling):
    """B side with columns b_j / sqrt(||b_j||^2 + rho_j^2), rho_j = mu / (scaling ||a_j||) (detached), by loops."""
    total = 0.0
    b_soft = []
    for a, b in zip(A_blocks, B_blocks):
        rho = mu / (scaling * a.detach().norm(dim=1))
        b_soft.append(b / (b.norm(dim=0, keepdim=True) ** 2 + rho[None, :] ** 2).sqrt())
    for i, j in itertools.combinations(range(len(B_blocks)), 2):
        total = total + (b_soft[i].T @ b_soft[j]).pow(2).sum()
    return total


def test_soft_b_normalization_equals_loop_definition():
    A, B = random_blocks([2, 3, 1], seed=4)
    B = [(0.05 * b).detach().requires_grad_(True) for b in B]  # columns comparable to the floor
    value = spr_penalty(A, B, "B", mu=0.3, scaling=2.0)
    reference = soft_naive_penalty(A, B, 0.3, 2.0)
    assert 1e-3 < value.item() < spr_penalty(A, B, "B").item()  # the floor lowers the penalty of small columns
    assert value.item() == pytest.approx(reference.item(), rel=1e-10)
    value.backward()
    grads = [b.grad.clone() for b in B]
    for b in B:
        b.grad = None
    reference.backward()
    for b, grad in zip(B, grads):
        torch.testing.assert_close(grad, b.grad, rtol=1e-9, atol=1e-14)
    assert all(a.grad is None for a in A)  # the floor is detached: the B side never asks A to shrink


def test_soft_b_normalization_keeps_the_gradient_bounded_near_zero():
    """Scale-free columns have a gradient ~ 1/||b||; with the floor each column's gradient is at most
    2 (R - 1) / rho_j (|d bsoft / d b| <= 1 / rho_j and |d penalty / d bsoft_i| <= 2 (R - 1))."""
    A, B = random_blocks([2, 3], seed=5)
    tiny = [(1e-6 * b).detach().requires_grad_(True) for b in B]
    spr_penalty(A, tiny, "B").backward()
    assert max(b.grad.norm(dim=0).max().item() for b in tiny) > 1e4
    for b in tiny:
        b.grad = None
    mu, scaling = 0.1, 2.0
    spr_penalty(A, tiny, "B", mu=mu, scaling=scaling).backward()
    for a, b in zip(A, tiny):
        rho = mu / (scaling * a.detach().norm(dim=1))
        assert (b.grad.norm(dim=0) <= 2 * (5 - 1) / rho).all()
        assert b.grad.norm(dim=0).max().item() < 1e-6


def test_penalty_input_errors():
    A, B = random_blocks([2, 3])
    with pytest.raises(ValueError, match="side"):
        spr_penalty(A, B, "C")
    with pytest.raises(ValueError, match="do not match"):
        spr_penalty(A, B[::-1], "AB")


# ---------------------------------------------------------------- config
def test_config_roundtrip_and_validation():
    config = ThanoRAConfig(tau=float("inf"), penalty_side="B", init="activation")
    assert ThanoRAConfig.from_dict(config.to_dict()) == config
    assert config.resolve_r_coop(16, 3) == 4
    assert ThanoRAConfig(r_coop=0).resolve_r_coop(16, 3) == 0
    with pytest.raises(ValueError, match="penalty_side"):
        ThanoRAConfig(penalty_side="BA")
    with pytest.raises(ValueError, match="tau"):
        ThanoRAConfig(tau=0)
    with pytest.raises(ValueError, match="unknown"):
        ThanoRAConfig.from_dict({"lambda": 0.1})


# ---------------------------------------------------------------- spectrum of W C via the Gram matrix
@pytest.mark.parametrize("shape", [(6, 9), (9, 6)])
def test_gram_svd_matches_torch_svd(shape):
    from llava_thanora.thanora.blocks import singular_values_and_top

    matrix = torch.randn(*shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    s, u, v = singular_values_and_top(matrix, 6)
    ref_u, ref_s, ref_vh = torch.linalg.svd(matrix, full_matrices=False)
    torch.testing.assert_close(s, ref_s)
    torch.testing.assert_close(u * s @ v.T, matrix)  # full k reconstructs M
    # Same vectors up to sign.
    torch.testing.assert_close((u * ref_u).sum(0).abs(), torch.ones(6, dtype=torch.float64))
    torch.testing.assert_close((v * ref_vh.T).sum(0).abs(), torch.ones(6, dtype=torch.float64))
