"""Task spectra and block initialization (METHOD.md steps 2, 3 and 6).

For one layer and one task, `task_factors` turns the weight W and the task covariance C_t into the
entropy of the spectrum of W C_t and the top components needed later, so the (large) covariance can be
freed before the ranks are known. `build_blocks` then assembles A = [A_coop; A_1; ...] and
B = [B_coop, B_1, ...] from the chosen ranks.

Accuracy. Real LLaMA-family activations have a few "massive" directions, so C_t (and W C_t) can span 8 or
more decades. Everything here then runs in float64 (`cov_dtype`, the default): the singular values come from
the eigenvalues of the smaller Gram matrix of M = W C_t, whose float64 rounding error (about 1e-16 s_max^2)
moves the normalized entropy by < 1e-6 even at 1e8 dynamic range. The Gram's eigenVECTORS are not accurate
enough there (an absolute error of 1e-16 s_max^2 is larger than the gaps of a flat bulk), so the top blocks of
the context init are refined by one Rayleigh-Ritz step on M itself: an oversampled basis (2k vectors) from
the Gram, then a small SVD of M restricted to it, which has the error of a direct SVD (1e-16 s_max) instead
of its square. `cov_dtype="float32"` runs the same steps in float32: faster, and wrong on heavy-tailed
spectra (tests/test_thanora_spectra.py measures both against an independent float64 SVD).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .allocation import normalized_entropy
from .linalg import small_gram, top_eigenvectors


@dataclass
class TaskFactors:
    """What one (layer, task) pair keeps after its covariance is freed."""

    entropy: float | None
    """Normalized entropy of the singular values of W C_t; None when the task never reached the layer."""
    left: torch.Tensor | None
    """(d_out, k) `U_k S_k^{1/2}` in context mode, else None."""
    right: torch.Tensor | None
    """(k, d_in) `S_k^{-1/2} U_k^T W` (context, equal to `S_k^{1/2} Vhat_k^T`) or the top eigenvectors of C_t
    as rows (activation); None in random mode or when the task never reached the layer."""


MISSING = TaskFactors(None, None, None)
"""The factors of a task that sent no token through a layer (see apply.py for the rule applied there)."""


class CovarianceFactorization:
    """A task's damped covariance `C + eps * mean(diag C) * I` (damped in place) with the factorization every
    layer reading that input reuses."""

    def __init__(self, cov: torch.Tensor, eps: float, mode: str) -> None:
        scale = cov.diagonal().mean().clamp_min(torch.finfo(cov.dtype).tiny)
        cov.diagonal().add_(eps * scale)  # in place: the caller hands over its covariance (d_in^2 can be 1 GB)
        self.cov = cov
        self.mode = mode
        self._eigvecs: torch.Tensor | None = None

    def top_eigenvectors(self, k: int) -> torch.Tensor:
        """(k, d_in) eigenvectors of C with the largest eigenvalues, as orthonormal rows (exact, linalg.py).
        Computed once per covariance, for the largest k asked first."""
        if self._eigvecs is None or self._eigvecs.shape[0] < k:
            self._eigvecs = top_eigenvectors(self.cov, k)
        return self._eigvecs[:k]


def singular_values(product: torch.Tensor) -> torch.Tensor:
    """All min(d_out, d_in) singular values of `product`, descending, from the eigenvalues of the smaller
    Gram matrix (no eigenvectors: the cheapest exact-in-exact-arithmetic route)."""
    return torch.linalg.eigvalsh(small_gram(product)).flip(0).clamp_min(0).sqrt()


def singular_values_and_top(product: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All singular values of `product` (descending) and its top-k singular vectors (U_k, V_k).

    The values are the Gram eigenvalues (as in `singular_values`); the vectors come from one Rayleigh-Ritz
    step on `product` itself over the Gram's top 2k eigenvectors (see the module docstring), so their error
    is that of a direct SVD, not of the squared matrix. Exact when 2k >= min(d_out, d_in).
    """
    matrix = product if product.shape[0] <= product.shape[1] else product.T  # wide: (small, large)
    small = matrix.shape[0]
    k = min(k, small)
    eigvals, eigvecs = torch.linalg.eigh(small_gram(matrix))  # ascending
    singular = eigvals.flip(0).clamp_min(0).sqrt()
    basis = eigvecs.flip(1)[:, : min(small, 2 * k + 8)]  # oversampled left basis
    right, _ = torch.linalg.qr(matrix.T @ basis)  # (large, q) orthonormal, spans M^T basis
    u_small, _, vh_small = torch.linalg.svd(matrix @ right, full_matrices=False)
    left_k, right_k = u_small[:, :k], right @ vh_small[:k].T
    return (singular, left_k, right_k) if matrix is product else (singular, right_k, left_k)


def task_factors(weight: torch.Tensor, cov: CovarianceFactorization, k: int, squared: bool) -> TaskFactors:
    """Entropy of W C and the top-k components for the block init of `cov.mode`.

    `weight` is (d_out, d_in) in the covariance dtype. Context mode: `W C = U S V^T`; the right block
    `S_k^{1/2} Vhat_k^T` with `Vhat^T = V^T C^{-1}` equals `S_k^{-1/2} U_k^T W` (because U^T W C = S V^T), which
    is computed instead: no inverse of the (possibly ill-conditioned) C, and `U_k S_k Vhat_k^T = U_k U_k^T W`
    exactly, the projection of W onto the task's top output directions.
    """
    product = weight @ cov.cov
    k = min(k, *product.shape)
    if cov.mode != "context":
        entropy = normalized_entropy(singular_values(product), squared=squared)
        right = cov.top_eigenvectors(k) if cov.mode == "activation" else None
        return TaskFactors(entropy, None, right)
    s, u, _ = singular_values_and_top(product, k)
    entropy = normalized_entropy(s, squared=squared)
    top = s[:k].clamp_min(torch.finfo(s.dtype).tiny)
    return TaskFactors(entropy, u * top.sqrt(), (u.T @ weight) / top.sqrt()[:, None])


def weight_rms(weight: torch.Tensor) -> float:
    """RMS singular value `||W||_F / sqrt(min(d_out, d_in))` of a frozen weight: the penalty's reference scale."""
    return float(weight.double().norm() / math.sqrt(min(weight.shape)))


def kaiming_rows(rows: int, d_in: int, generator: torch.Generator) -> torch.Tensor:
    """peft's default lora_A init (kaiming_uniform with a=sqrt(5): U(-1/sqrt(d_in), 1/sqrt(d_in)))."""
    bound = 1.0 / math.sqrt(d_in)
    return torch.empty(rows, d_in).uniform_(-bound, bound, generator=generator)


def build_blocks(
    factors: list[TaskFactors],
    ranks: list[int],
    r_coop: int,
    shape: tuple[int, int],
    scaling: float,
    gamma: float,
    mode: str,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial (A0 (r, d_in), B0 (d_out, r)) in float32 on CPU, cooperative block first.

    context: `B_t = sqrt(gamma/s) U_k S_k^{1/2}`, `A_t = sqrt(gamma/s) S_k^{1/2} Vhat_k^T`;
    activation: `A_t` = top eigenvectors of C_t, `B_t = 0`; random: every block Kaiming A, zero B.
    The cooperative block, and the block of a task that never reached the layer (`MISSING`), get the
    standard LoRA init (Kaiming A, zero B). Random draws happen in block order whatever the mode.
    """
    d_out, d_in = shape
    r = r_coop + sum(ranks)
    a0 = torch.zeros(r, d_in)
    b0 = torch.zeros(d_out, r)
    a0[:r_coop] = kaiming_rows(r_coop, d_in, generator)
    factor = math.sqrt(gamma / scaling)
    start = r_coop
    for task_factors_, rank in zip(factors, ranks):
        end = start + rank
        if mode == "random" or task_factors_.right is None:
            a0[start:end] = kaiming_rows(rank, d_in, generator)
        elif mode == "context":
            a0[start:end] = factor * task_factors_.right[:rank].float().cpu()
            b0[:, start:end] = factor * task_factors_.left[:, :rank].float().cpu()
        else:  # activation
            a0[start:end] = task_factors_.right[:rank].float().cpu()
        start = end
    return a0, b0
