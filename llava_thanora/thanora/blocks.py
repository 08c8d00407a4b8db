"""Task spectra and block initialization (METHOD.md steps 2, 3 and 6).

For one layer and one task, `task_factors` turns the weight W and the task covariance C_t into the
entropy of the spectrum of W C_t and the top components needed later, so the (large) covariance can be
freed before the ranks are known. `build_blocks` then assembles A = [A_coop; A_1; ...] and
B = [B_coop, B_1, ...] from the chosen ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .allocation import normalized_entropy


@dataclass
class TaskFactors:
    """What one (layer, task) pair keeps after its covariance is freed."""

    entropy: float
    """Normalized entropy of the singular values of W C_t."""
    left: torch.Tensor | None
    """(d_out, k) `U_k S_k^{1/2}` in context mode, else None."""
    right: torch.Tensor | None
    """(k, d_in) `S_k^{1/2} Vhat_k^T` (context) or the top eigenvectors of C_t as rows (activation)."""


class CovarianceFactorization:
    """A task's damped covariance with the factorizations every layer reading that input reuses."""

    def __init__(self, cov: torch.Tensor, eps: float, mode: str) -> None:
        scale = cov.diagonal().mean().clamp_min(torch.finfo(cov.dtype).tiny)
        self.cov = cov + (eps * scale) * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
        self.mode = mode
        self._chol: torch.Tensor | None = None
        self._eigvecs: torch.Tensor | None = None

    def solve(self, rhs: torch.Tensor) -> torch.Tensor:
        """C^{-1} rhs (Cholesky; pseudo-inverse if C is singular, e.g. eps = 0)."""
        if self._chol is None:
            chol, info = torch.linalg.cholesky_ex(self.cov)
            self._chol = chol if int(info) == 0 else torch.empty(0)
        if self._chol.numel() == 0:
            return torch.linalg.pinv(self.cov, hermitian=True) @ rhs
        return torch.cholesky_solve(rhs, self._chol)

    def top_eigenvectors(self, k: int) -> torch.Tensor:
        """(k, d_in) eigenvectors of C with the largest eigenvalues, as orthonormal rows."""
        if self._eigvecs is None:
            _, vecs = torch.linalg.eigh(self.cov)  # ascending eigenvalues
            self._eigvecs = vecs.flip(1).T.contiguous()
        return self._eigvecs[:k]


def singular_values_and_top(product: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All singular values of `product` (descending) and its top-k singular vectors (U_k, V_k).

    Computed from the eigen-decomposition of the smaller Gram matrix (M M^T or M^T M), which is many times
    faster than a full SVD and exact in exact arithmetic. In float32, values below about 3e-4 * s_max lose
    relative precision (they barely move the entropy); `cov_dtype="float64"` avoids that.
    """
    wide = product.shape[0] <= product.shape[1]
    gram = product @ product.T if wide else product.T @ product
    eigvals, eigvecs = torch.linalg.eigh(gram)  # ascending
    singular = eigvals.flip(0).clamp_min(0).sqrt()
    top = eigvecs.flip(1)[:, :k]
    scale = singular[:k].clamp_min(torch.finfo(singular.dtype).tiny)
    other = (product.T @ top if wide else product @ top) / scale  # the matching vectors of the other side
    return (singular, top, other) if wide else (singular, other, top)


def task_factors(weight: torch.Tensor, cov: CovarianceFactorization, k: int, squared: bool) -> TaskFactors:
    """Entropy of W C_t and the top-k components for the block init of `cov.mode`.

    `weight` is (d_out, d_in) in the covariance dtype. Context mode: `W C = U S V^T`,
    `Vhat^T = V^T C^{-1}`, so that `U S Vhat^T = W`.
    """
    product = weight @ cov.cov
    k = min(k, *product.shape)
    s, u, v = singular_values_and_top(product, k)
    entropy = normalized_entropy(s, squared=squared)
    if cov.mode != "context":
        right = cov.top_eigenvectors(k) if cov.mode == "activation" else None
        return TaskFactors(entropy, None, right)
    root = s[:k].sqrt()
    vhat = cov.solve(v.contiguous())  # (d_in, k) = C^{-1} V_k
    return TaskFactors(entropy, u * root, root[:, None] * vhat.T)


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
    The cooperative block always gets Kaiming A and zero B.
    """
    d_out, d_in = shape
    r = r_coop + sum(ranks)
    a0 = torch.zeros(r, d_in)
    b0 = torch.zeros(d_out, r)
    a0[:r_coop] = kaiming_rows(r_coop, d_in, generator)
    if mode == "random":
        a0[r_coop:] = kaiming_rows(r - r_coop, d_in, generator)
        return a0, b0
    factor = math.sqrt(gamma / scaling)
    start = r_coop
    for task_factors_, rank in zip(factors, ranks):
        end = start + rank
        if mode == "context":
            a0[start:end] = factor * task_factors_.right[:rank].float().cpu()
            b0[:, start:end] = factor * task_factors_.left[:, :rank].float().cpu()
        else:  # activation
            a0[start:end] = task_factors_.right[:rank].float().cpu()
        start = end
    return a0, b0
