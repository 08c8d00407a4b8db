"""Symmetric kernels of the preview: a Gram accumulation with 5/8 of the flops and exact top-k eigenvectors.

torch has no symmetric rank-k update, so `add_gram_` computes only the lower block triangle of `x^T x`, one
GEMM per row block (1.4-1.9x faster than `addmm_` on CPU in float64 at d = 512 and 1376); `symmetrize_`
completes the matrix once after the last update.

`top_eigenvectors` calls LAPACK's syevr restricted to the top k through SciPy (a requirement) on CPU: 1.3-1.9x
(d = 512) to 2.2-3x (d = 1376) faster than torch's full `eigh`. SciPy's OpenBLAS and torch's OpenMP threads
then compete for the same cores: measured on 2 cores, a torch matmul + eigvalsh right after a 2-thread SciPy
call took 65.8 ms instead of 22.8 + 22.1, so calls on d < 2048 run on one thread. Larger ones last seconds,
where the contention is noise and two threads are 1.6-1.7x faster (d = 4096: 4.7 s vs 7.5 s; 11008: 84 s vs
145 s).
Everything else stays in torch, on any device.
"""

from __future__ import annotations

import numpy as np
import torch
from threadpoolctl import threadpool_limits

_BLOCK = 1024  # rows per step of symmetrize_: its temporaries stay small even for d = 11008
_MANY_THREADS_FROM = 2048  # top_eigenvectors: d from which SciPy keeps all its threads (1.6-1.7x at 4096, 11008)


def add_gram_(total: torch.Tensor, x: torch.Tensor, blocks: int = 4) -> None:
    """total += x^T x for rows x (n, d), lower block triangle only (call `symmetrize_` once after the last
    update): `blocks` row blocks of `total`, each one GEMM up to its diagonal, (blocks + 1) / (2 blocks) of
    the flops of the full product (5/8 for 4 blocks)."""
    d = x.shape[1]
    edges = [d * i // blocks for i in range(blocks + 1)]
    for start, stop in zip(edges, edges[1:]):
        if stop > start:
            total[start:stop, :stop].addmm_(x[:, start:stop].T, x[:, :stop])


def symmetrize_(total: torch.Tensor) -> torch.Tensor:
    """Copy the lower triangle of a square matrix onto its upper triangle, in place, in row blocks."""
    d = total.shape[0]
    for start in range(0, d, _BLOCK):
        stop = min(start + _BLOCK, d)
        diagonal = total[start:stop, start:stop]
        diagonal.copy_(diagonal.tril() + diagonal.tril(-1).T)
        total[:start, start:stop].copy_(total[start:stop, :start].T)
    return total


def small_gram(matrix: torch.Tensor) -> torch.Tensor:
    """The Gram matrix of the smaller side of `matrix` (M M^T when M is wide, else M^T M), symmetric."""
    rows = matrix.T if matrix.shape[0] <= matrix.shape[1] else matrix  # Gram = rows^T rows
    gram = torch.zeros(rows.shape[1], rows.shape[1], dtype=matrix.dtype, device=matrix.device)
    add_gram_(gram, rows)
    return symmetrize_(gram)


def top_eigenvectors(symmetric: torch.Tensor, k: int) -> torch.Tensor:
    """(k, d) eigenvectors of the k largest eigenvalues, as orthonormal rows, largest first (exact, not
    iterative). On CPU only those k are computed (syevr with an index range) when k < d / 2."""
    d = symmetric.shape[0]
    if symmetric.device.type == "cpu" and symmetric.dtype in (torch.float32, torch.float64) and 2 * k < d:
        from scipy.linalg import eigh

        # One thread for the short calls, where competing with torch's threads costs more than it gains.
        with threadpool_limits(1 if d < _MANY_THREADS_FROM else None, user_api="blas"):
            _, vecs = eigh(symmetric.numpy(), subset_by_index=[d - k, d - 1], driver="evr", check_finite=False)
        return torch.from_numpy(np.ascontiguousarray(vecs[:, ::-1].T))
    _, vecs = torch.linalg.eigh(symmetric)  # ascending eigenvalues
    return vecs.flip(1).T[:k].contiguous()
