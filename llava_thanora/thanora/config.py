"""ThanoRA hyper-parameters (every knob of docs METHOD.md, including the "(ours)" choices).

Each field is also a `train.py` flag, `--thanora_<field>` (`metadata["flag"]` renames the two whose flag reads
better: `--thanora_lambda`, `--thanora_penalty`); `llava_thanora.flags.arguments_from` derives them, so the
defaults and docstrings below are the only copy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from .allocation import check_tau

PenaltySide = Literal["A", "B", "AB"]
InitMode = Literal["context", "activation", "random"]
AllocationMode = Literal["entropy", "uniform"]


@dataclass
class ThanoRAConfig:
    """Configuration of ThanoRA on top of an ordinary `peft.LoraConfig` (which supplies r, alpha, targets)."""

    tau: float = 0.1
    """Softmax temperature of the rank shares `softmax(H_t / tau)`; `float('inf')` gives uniform shares."""
    lam: float = field(default=0.1, metadata={"flag": "lambda"})
    """Weight lambda of the subspace-preserving penalty in `L = L_lm + lam * L_spr`; 0 disables its gradient."""
    gamma: float = 1.0
    """Magnitude factor of the context init: `s * B_t A_t = gamma * U_k S_k Vhat_k^T`."""
    r_coop: int = -1
    """Rank of the cooperative (shared) block; -1 means `floor(r / (T + 1))`, 0 disables it."""
    r_min: int = 1
    """Smallest rank any task block may get."""
    preview_samples: int = 500
    """Per-task cap on the number of samples (batch rows) forwarded in the instruction preview."""
    penalty_side: PenaltySide = field(default="AB", metadata={"flag": "penalty"})
    """Which factor the penalty acts on: rows of A, columns of B, or both."""
    init: InitMode = "activation"
    """Block init: `context` (the paper's: task SVDs of W C_t, residual base), `activation` (a variant, ours:
    A_t = top eigenvectors of C_t, B_t = 0, base untouched) or `random` (standard LoRA init for every block,
    base untouched). The default, `activation`, was chosen on a validation split of minimix over 3 seeds
    (BENCHMARKS.md)."""
    allocation: AllocationMode = "entropy"
    """`entropy`: ranks from softmax of the normalized spectral entropies; `uniform`: equal shares."""
    eps: float = 1e-5
    """Damping of the covariance, `C + eps * mean(diag C) * I`, before the SVD and the inverse."""
    entropy_on_squared: bool = False
    """Compute the entropy from p ~ s^2 (energy) instead of p ~ s (the default reading of the paper)."""
    cov_budget_mb: float = 4096.0
    """Memory budget for the covariance accumulators alive at once; modules are processed in groups
    (each group re-runs the preview forwards) so that one task's covariances of a group fit."""
    cov_dtype: Literal["float32", "float64"] = "float64"
    """Precision of the covariance accumulation and of the spectra. float64 is accurate on heavy-tailed
    activations (massive outlier directions); float32 is a faster opt-in that is not (entropy errors of 1e-2
    and meaningless context blocks once outliers reach 1e4 x the bulk)."""
    penalty_floor: float = 0.1
    """B-side soft normalization of the penalty: a B column's direction counts fully once its rank-1 update
    `s b_j a_j^T` exceeds this fraction of the frozen weight's RMS singular value, and fades out below it, so the
    penalty stays well-posed when B starts at 0. 0 = plain unit columns (ill-posed at B = 0)."""
    seed: int = 0
    """Seed of the Kaiming init of the cooperative (and random-mode) blocks; identical on all ranks."""

    def __post_init__(self) -> None:
        check_tau(self.tau)
        if self.lam < 0:
            raise ValueError(f"ThanoRAConfig.lam must be >= 0, got {self.lam}")
        if self.gamma <= 0:
            raise ValueError(f"ThanoRAConfig.gamma must be > 0, got {self.gamma}")
        if self.r_coop < -1:
            raise ValueError(f"ThanoRAConfig.r_coop must be -1 (auto) or >= 0, got {self.r_coop}")
        if self.r_min < 0:
            raise ValueError(f"ThanoRAConfig.r_min must be >= 0, got {self.r_min}")
        if self.preview_samples < 1:
            raise ValueError(f"ThanoRAConfig.preview_samples must be >= 1, got {self.preview_samples}")
        if self.eps < 0:
            raise ValueError(f"ThanoRAConfig.eps must be >= 0, got {self.eps}")
        if self.penalty_floor < 0:
            raise ValueError(f"ThanoRAConfig.penalty_floor must be >= 0, got {self.penalty_floor}")
        if self.cov_budget_mb <= 0:
            raise ValueError(f"ThanoRAConfig.cov_budget_mb must be > 0, got {self.cov_budget_mb}")
        for name, allowed in (
            ("penalty_side", ("A", "B", "AB")),
            ("init", ("context", "activation", "random")),
            ("allocation", ("entropy", "uniform")),
            ("cov_dtype", ("float32", "float64")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"ThanoRAConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")

    def resolve_r_coop(self, r: int, num_tasks: int) -> int:
        """The cooperative rank for total rank `r` and `num_tasks` tasks (resolving -1)."""
        r_coop = r // (num_tasks + 1) if self.r_coop == -1 else self.r_coop
        if r_coop > r:
            raise ValueError(f"r_coop={r_coop} exceeds the LoRA rank r={r}")
        return r_coop

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tau=inf is written as the string "inf", which `from_dict` reads back)."""
        out = asdict(self)
        if out["tau"] == float("inf"):
            out["tau"] = "inf"
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ThanoRAConfig:
        """Inverse of `to_dict`; unknown keys are an error so that typos do not pass silently."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ThanoRAConfig keys: {sorted(unknown)}")
        data = dict(data)
        if "tau" in data:
            data["tau"] = float(data["tau"])
        return cls(**data)
