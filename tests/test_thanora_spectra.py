"""ThanoRA's spectra on heavy-tailed activations, against an independent float64 SVD written here.

LLaMA-family activations have a few "massive" outlier directions. The covariances below have 4 outlier
eigenvalues R, R/2, R/4, R/8 above a log-spaced bulk in [1e-2, 1] (in a random basis), the activations are
float32 as a model produces them, and the reference is the float64 SVD of the damped W C computed from the
same float32 activations (METHOD.md steps 2, 3 and 6): normalized entropy of s, and the rank-k context block
`gamma U_k S_k Vhat_k^T` with `Vhat^T = V^T C^{-1}`.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
from peft import LoraConfig

from llava_thanora.thanora import ThanoRAConfig, apply_thanora

D_IN, D_OUT, TOKENS, K, EPS = 512, 384, 2048, 32, 1e-5
REPO = Path(__file__).resolve().parents[1]


def _one_layer_module():
    """bench/bench_spectra.py's one-linear-layer model (the bench prints these errors at d = 1024)."""
    spec = importlib.util.spec_from_file_location("bench_spectra", REPO / "bench" / "bench_spectra.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.OneLayer


OneLayer = _one_layer_module()


def heavy_tailed_activations(outlier: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(D_IN, D_IN, dtype=torch.float64, generator=gen))
    eigenvalues = torch.cat([outlier / torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=torch.float64),
                             torch.logspace(-2, 0, D_IN - 4, dtype=torch.float64)])
    z = torch.randn(TOKENS, D_IN, dtype=torch.float64, generator=gen)
    return ((z * eigenvalues.sqrt()) @ basis.T).float()


def reference(weight: torch.Tensor, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    """(normalized entropy of s, U_k S_k V_k^T C^{-1}) from torch.linalg.svd in float64."""
    x = x.double()
    cov = x.T @ x / x.shape[0]
    cov = cov + EPS * cov.diagonal().mean() * torch.eye(D_IN, dtype=torch.float64)
    u, s, vh = torch.linalg.svd(weight.double() @ cov, full_matrices=False)
    p = s / s.sum()
    entropy = float(-(p * p.log()).sum() / math.log(len(s)))
    block = (u[:, :K] * s[:K]) @ torch.linalg.solve(cov, vh[:K].T).T
    return entropy, block


def thanora_spectrum(weight: torch.Tensor, x: torch.Tensor, **options):
    """(entropy, s * B_t A_t) of the single task block of rank K, through `apply_thanora` with the default
    precision unless `options` say otherwise."""
    config = ThanoRAConfig(init="context", r_coop=0, eps=EPS, **options)
    peft_model, state = apply_thanora(OneLayer(weight), LoraConfig(r=K, lora_alpha=2 * K, target_modules=["proj"]),
                                      config, {"task": [{"inputs_embeds": x[None]}]})
    a0, b0 = state.init_blocks["proj"]
    scaling = peft_model.base_model.model.proj.scaling["default"]
    return state.modules["proj"].entropies[0], scaling * b0.double() @ a0.double()


@pytest.fixture(scope="module")
def weight() -> torch.Tensor:
    return torch.randn(D_OUT, D_IN, generator=torch.Generator().manual_seed(0)) / math.sqrt(D_IN)


@pytest.mark.parametrize("outlier", [1e2, 1e4, 1e6])
def test_default_spectra_match_float64_svd(weight, outlier):
    x = heavy_tailed_activations(outlier, seed=int(math.log10(outlier)))
    ref_entropy, ref_block = reference(weight, x)
    entropy, block = thanora_spectrum(weight, x)
    assert abs(entropy - ref_entropy) < 1e-5
    assert ((block - ref_block).norm() / ref_block.norm()).item() < 1e-3


def test_float32_opt_in_is_inaccurate_on_outliers(weight):
    """The faster float32 path exists only as an explicit opt-in, because it is wrong on such spectra."""
    x = heavy_tailed_activations(1e4, seed=4)
    ref_entropy, ref_block = reference(weight, x)
    entropy, block = thanora_spectrum(weight, x, cov_dtype="float32")
    assert abs(entropy - ref_entropy) > 1e-4 or ((block - ref_block).norm() / ref_block.norm()).item() > 1e-2


def test_activation_rows_are_the_top_eigenvectors_of_the_damped_covariance():
    """init=activation: A_t = top eigenvectors of C_t (only the top k are computed on CPU), against torch's eigh."""
    from llava_thanora.thanora.blocks import CovarianceFactorization

    x = heavy_tailed_activations(1e4, seed=7).double()
    cov = x.T @ x / x.shape[0]
    _, vecs = torch.linalg.eigh(cov + EPS * cov.diagonal().mean() * torch.eye(D_IN, dtype=torch.float64))
    rows = CovarianceFactorization(cov.clone(), EPS, "activation").top_eigenvectors(K)
    reference = vecs.flip(1)[:, :K].T
    assert rows.shape == (K, D_IN)
    torch.testing.assert_close((rows * reference).sum(1).abs(), torch.ones(K, dtype=torch.float64), atol=1e-8, rtol=0)


@pytest.mark.parametrize("d", [1, 3, 130, 1100])
def test_block_triangular_gram_accumulation_equals_the_full_product(d):
    """add_gram_ computes only the lower block triangle of x^T x (5/8 of a GEMM); after symmetrize_ the sum over
    several updates (contiguous and transposed inputs) equals the float64 product, for d below, at and above the
    block sizes of both functions."""
    from llava_thanora.thanora.linalg import add_gram_, small_gram, symmetrize_

    gen = torch.Generator().manual_seed(d)
    parts = [torch.randn(n, d, generator=gen, dtype=torch.float64) for n in (5, 17, 0)]
    parts.append(torch.randn(d, 9, generator=gen, dtype=torch.float64).T)  # a non-contiguous (transposed) view
    total = torch.zeros(d, d, dtype=torch.float64)
    for part in parts:
        add_gram_(total, part)
    edges = [d * i // 4 for i in range(5)]  # add_gram_'s default 4 row blocks
    for start, stop in zip(edges, edges[1:]):
        assert not total[start:stop, stop:].any()  # nothing written above the diagonal blocks
    assert total[edges[1]:, : edges[1]].abs().sum() > 0 or d < 4
    symmetrize_(total)
    rows = torch.cat(parts)
    torch.testing.assert_close(total, rows.T @ rows, atol=1e-10, rtol=1e-12)
    assert torch.equal(total, total.T)
    wide = torch.randn(3, d + 4, generator=gen, dtype=torch.float64)  # wide for every d
    torch.testing.assert_close(small_gram(wide), wide @ wide.T, atol=1e-10, rtol=1e-12)
    torch.testing.assert_close(small_gram(wide.T), wide @ wide.T, atol=1e-10, rtol=1e-12)
