"""Accuracy of ThanoRA's spectra on heavy-tailed activations, default (float64) vs the float32 opt-in.

    python bench/bench_spectra.py [--d-in 1024] [--d-out 1024] [--tokens 4096] [--k 32]

The covariance has 4 outlier eigenvalues R, R/2, R/4, R/8 above a log-spaced bulk in [1e-2, 1], in a random basis;
activations are float32 as a model produces them. The reference is torch.linalg.svd in float64 of the damped
W C_t built from the same activations (METHOD.md steps 2, 3 and 6). Printed: the error of the normalized entropy
and the relative error of the rank-k context block `s B_t A_t` against `U_k S_k Vhat_k^T`, for each R.
tests/test_thanora_spectra.py asserts the same bounds at d = 512.
"""

from __future__ import annotations

import argparse
import math

import torch
from peft import LoraConfig
from torch import nn

from llava_thanora.thanora import ThanoRAConfig, apply_thanora

EPS = 1e-5


class OneLayer(nn.Module):
    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.proj = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        self.proj.weight.data.copy_(weight)

    def forward(self, inputs_embeds: torch.Tensor) -> torch.Tensor:
        return self.proj(inputs_embeds)


def activations(d_in: int, tokens: int, outlier: float, gen: torch.Generator) -> torch.Tensor:
    basis, _ = torch.linalg.qr(torch.randn(d_in, d_in, dtype=torch.float64, generator=gen))
    spectrum = torch.cat([outlier / torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=torch.float64),
                          torch.logspace(-2, 0, d_in - 4, dtype=torch.float64)])
    return ((torch.randn(tokens, d_in, dtype=torch.float64, generator=gen) * spectrum.sqrt()) @ basis.T).float()


def reference(weight: torch.Tensor, x: torch.Tensor, k: int) -> tuple[float, torch.Tensor]:
    x = x.double()
    cov = x.T @ x / x.shape[0]
    cov = cov + EPS * cov.diagonal().mean() * torch.eye(cov.shape[0], dtype=torch.float64)
    u, s, vh = torch.linalg.svd(weight.double() @ cov, full_matrices=False)
    p = s / s.sum()
    block = (u[:, :k] * s[:k]) @ torch.linalg.solve(cov, vh[:k].T).T
    return float(-(p * p.log()).sum() / math.log(len(s))), block


def thanora(weight: torch.Tensor, x: torch.Tensor, k: int, cov_dtype: str) -> tuple[float, torch.Tensor]:
    config = ThanoRAConfig(init="context", r_coop=0, eps=EPS, cov_dtype=cov_dtype)
    model, state = apply_thanora(OneLayer(weight), LoraConfig(r=k, lora_alpha=2 * k, target_modules=["proj"]),
                                 config, {"task": [{"inputs_embeds": x[None]}]})
    a0, b0 = state.init_blocks["proj"]
    return state.modules["proj"].entropies[0], model.base_model.model.proj.scaling["default"] * b0.double() @ a0.double()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--d-in", type=int, default=1024)
    ap.add_argument("--d-out", type=int, default=1024)
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--k", type=int, default=32)
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(args.d_out, args.d_in, generator=gen) / math.sqrt(args.d_in)
    print(f"d_in {args.d_in}, d_out {args.d_out}, {args.tokens} float32 tokens, rank-{args.k} context block\n")
    print("| outlier R | entropy error, float64 (default) | block error, float64 | entropy error, float32 opt-in "
          "| block error, float32 |")
    print("|---|---|---|---|---|")
    for outlier in (1.0, 1e2, 1e4, 1e6):
        x = activations(args.d_in, args.tokens, outlier, gen)
        ref_entropy, ref_block = reference(weight, x, args.k)
        cells = []
        for dtype in ("float64", "float32"):
            entropy, block = thanora(weight, x, args.k, dtype)
            cells += [f"{abs(entropy - ref_entropy):.1e}", f"{((block - ref_block).norm() / ref_block.norm()):.1e}"]
        print(f"| {outlier:g} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
