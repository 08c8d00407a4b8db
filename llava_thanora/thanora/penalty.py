"""Subspace-preserving regularization (METHOD.md component 2).

`spr_penalty` is the reference definition for one layer. `PenaltyCollector` evaluates the same quantity
during training from copies taken in forward hooks on each LoRA layer's `lora_A` / `lora_B` sub-modules,
because under DeepSpeed ZeRO-3 those matrices only hold their values during their own module's forward.

Well-posed at B = 0 (METHOD.md, "Soft normalization of B"). A scale-free penalty has a gradient that grows
like 1/||b|| as a column b of B shrinks, and `activation` / `random` start with B = 0: after the first step
every column is tiny and the penalty's gradient swamps the language-model gradient. So each B column is
normalized softly, `b / sqrt(||b||^2 + rho_j^2)` with `rho_j = mu / (s ||a_j||)` (||a_j|| detached): the
column counts fully once its rank-1 update `s b_j a_j^T` is large next to `mu = penalty_floor x` the RMS
singular value of the frozen weight, and not at all while it is negligible. The penalty then rises smoothly
from 0, its gradient is at most about `s ||a_j|| / mu` per column, and it is invariant to LoRA's rescaling
`b_j -> c b_j, a_j -> a_j / c` like the scale-free form. A rows are never near zero and stay unit-normalized.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..distributed import is_partitioned


def cross_task_mask(ranks: Sequence[int], device: torch.device | None = None) -> torch.Tensor:
    """Boolean (R, R) mask, R = sum(ranks), True where row and column belong to different tasks."""
    task_of = torch.repeat_interleave(torch.arange(len(ranks), device=device), torch.tensor(ranks, device=device))
    return task_of[:, None] != task_of[None, :]


class _SymmetricGram(torch.autograd.Function):
    """`V V^T` whose backward uses the symmetry: one product `(G + G^T) V` instead of autograd's two."""

    @staticmethod
    def forward(ctx, vectors: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(vectors)
        return vectors @ vectors.transpose(-1, -2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (vectors,) = ctx.saved_tensors
        return (grad + grad.transpose(-1, -2)) @ vectors


def gram_penalty(vectors: torch.Tensor, mask: torch.Tensor, floor: torch.Tensor | None = None) -> torch.Tensor:
    """`sum_{i<j} ||Vhat_i Vhat_j^T||_F^2` for row blocks of `vectors` (..., R, d) described by `mask`.

    One Gram matrix per layer: the raw Gram `V V^T` is normalized by its own diagonal (the squared row
    norms), which equals the Gram of the unit rows without dividing the (R, d) matrix itself. Cross-task
    entries appear twice (i,j and j,i), hence the 1/2. Zero rows stay zero (norms clamped at 1e-12, as in
    F.normalize). `floor` (..., R), detached: soft normalization `v / sqrt(||v||^2 + floor^2)` (module
    docstring). Leading dimensions are a batch of layers (one value each). Cost O(R^2 d) whatever the number
    of tasks.
    """
    # At least float32 (bf16 squared norms underflow); float64 input stays float64.
    raw = _SymmetricGram.apply(vectors.to(torch.promote_types(vectors.dtype, torch.float32)))
    squared_norms = raw.diagonal(dim1=-2, dim2=-1)
    if floor is not None:
        squared_norms = squared_norms + floor.to(raw.dtype).square()
    # 1/||v|| is at most 1e12, so a zero row gives 0 * 1e12 * 1e12 = 0. (Dividing raw^2 by the squared norms
    # instead would reach 0 * 1e48 = 0 * inf = NaN in float32 for the zero-initialized B of init=activation.)
    inv_norm = squared_norms.clamp_min(1e-24).rsqrt()
    cosine = raw * inv_norm[..., :, None] * inv_norm[..., None, :]
    return 0.5 * (cosine.square() * mask).sum(dim=(-1, -2))


def b_floor(a_rows: torch.Tensor, mu: float, scaling: float) -> torch.Tensor:
    """Soft-normalization floor `rho_j = mu / (s ||a_j||)` of each B column, from the matching A rows (detached);
    a zero A row gives an infinite floor (that column never counts)."""
    norms = a_rows.detach().to(torch.promote_types(a_rows.dtype, torch.float32)).norm(dim=-1)
    return (mu / scaling) / norms.clamp_min(torch.finfo(norms.dtype).tiny)


def spr_penalty(
    A_blocks: Sequence[torch.Tensor], B_blocks: Sequence[torch.Tensor], side: str = "AB",
    mu: float = 0.0, scaling: float = 1.0,
) -> torch.Tensor:
    """Penalty of ONE layer: `sum_{i<j} ||Ahat_i Ahat_j^T||_F^2 + ||Bhat_i^T Bhat_j||_F^2`.

    A_t: (r_t, d_in) with unit-normalized rows, B_t: (d_out, r_t) with columns normalized softly with the
    floor `mu / (scaling ||a_j||)` (`mu` = penalty_floor x RMS singular value of W; 0 gives plain unit
    columns). `side` selects "A", "B" or "AB" (both). Differentiable; zero exactly when the task subspaces of
    the selected side(s) are mutually orthogonal.
    """
    if side not in ("A", "B", "AB"):
        raise ValueError(f"side must be 'A', 'B' or 'AB', got {side!r}")
    if len(A_blocks) != len(B_blocks) or len(A_blocks) == 0:
        raise ValueError(f"need the same nonzero number of A and B blocks, got {len(A_blocks)} and {len(B_blocks)}")
    ranks = [a.shape[0] for a in A_blocks]
    if ranks != [b.shape[1] for b in B_blocks]:
        raise ValueError(f"A rows {ranks} do not match B columns {[b.shape[1] for b in B_blocks]}")
    mask = cross_task_mask(ranks, device=A_blocks[0].device)
    A = torch.cat(list(A_blocks), dim=0)
    total = A_blocks[0].new_zeros(())
    if "A" in side:
        total = total + gram_penalty(A, mask)
    if "B" in side:
        floor = b_floor(A, mu, scaling) if mu > 0 else None
        total = total + gram_penalty(torch.cat(list(B_blocks), dim=1).T, mask, floor)
    return total


class PenaltyCollector:
    """Records each adapted module's penalty while a training step is active.

    Use `start_step()` before the model forward and `finish_step()` after it (before backward). The
    forward hooks on `lora_A[adapter]` (A side) and `lora_B[adapter]` (B side) only keep the weight:
    under ZeRO-3 (where it holds its values only there) as `module.weight.clone()`, which keeps autograd
    off the partitioned storage while its backward still reaches the parameter. `finish_step`
    then evaluates all modules at once: weights of equal shape are stacked and share one batched Gram
    product, so the cost is a handful of kernels per step instead of dozens per module.
    `mu[name]` is the B-side floor scale of each module (module docstring; 0 = plain unit columns), which
    needs the A rows, so A is recorded (detached) for a B-only penalty too.

    Gradient checkpointing: nothing is recorded outside an active step, so the re-forward during backward is
    not counted twice. With non-reentrant checkpointing (the default of `train.py`) penalty and gradients equal
    those without checkpointing (tested). Reentrant checkpointing also gives equal values in one process
    (tested), but under DeepSpeed ZeRO-2/3 the LoRA weight then receives two separate gradient contributions
    per step (the recompute's own backward and the penalty's), which ZeRO-2 rejects ("Gradient computed twice")
    and ZeRO-3 crashes on; the training glue refuses that combination before the preview.
    """

    def __init__(self, modules: dict[str, nn.Module], ranks: dict[str, list[int]], r_coop: int,
                 side: str, lam: float, adapter_name: str = "default", mu: dict[str, float] | None = None) -> None:
        self.side, self.lam, self.r_coop, self.adapter_name = side, lam, r_coop, adapter_name
        self._ranks = dict(ranks)
        self._mu = {name: (mu or {}).get(name, 0.0) for name in modules}
        self._scaling = {name: float(layer.scaling[adapter_name]) for name, layer in modules.items()}
        self._masks: dict[tuple[str, ...], torch.Tensor] = {}  # stacked masks per group of module names
        self._weights: dict[tuple[str, str], torch.Tensor] = {}
        self._last: dict[tuple[str, str], torch.Tensor] = {}
        self._active = False
        self._handles = []
        record_a = "A" in side or ("B" in side and any(v > 0 for v in self._mu.values()))
        for name, layer in modules.items():
            for factor in ("A", "B"):
                if factor in side or (factor == "A" and record_a):
                    sub = (layer.lora_A if factor == "A" else layer.lora_B)[adapter_name]
                    # prepend: run before any post-forward hook that releases ZeRO-3 partitions.
                    self._handles.append(sub.register_forward_hook(self._make_hook(name, factor), prepend=True))

    def _make_hook(self, name: str, factor: str):
        def hook(module: nn.Module, args, output) -> None:
            if not self._active:
                return
            weight = module.weight
            if weight.numel() == 0:
                raise RuntimeError(f"LoRA weight of {name} is empty (shape [0]) inside its forward hook")
            if self.lam == 0 or factor not in self.side:
                self._weights[(name, factor)] = weight.detach().clone()
                return
            # A ZeRO-3 partition is released right after this forward: copy it, with grad enabled even inside
            # reentrant checkpointing's no_grad forward. A plain parameter keeps its values until the
            # optimizer step, so a reference suffices (finish_step stacks a copy anyway). A clone saves no
            # tensor for backward, so checkpointing's recompute (where this hook records nothing) matches.
            with torch.enable_grad():
                self._weights[(name, factor)] = weight.clone() if is_partitioned(weight) else weight

        return hook

    def start_step(self) -> None:
        """Begin recording (call right before the model forward)."""
        self._weights = {}
        self._active = True

    def _group_mask(self, names: tuple[str, ...], device: torch.device) -> torch.Tensor:
        mask = self._masks.get(names)
        if mask is None or mask.device != device:
            mask = self._masks[names] = torch.stack([cross_task_mask(self._ranks[n]) for n in names]).to(device)
        return mask

    def finish_step(self, training: bool = True) -> torch.Tensor:
        """Stop recording; return the mean over the modules that ran of their penalty (scalar tensor).

        Modules that did not run in this forward (e.g. a vision tower without images) are left out of
        the mean. With lam > 0 and `training` the result must carry a gradient; otherwise RuntimeError.
        """
        self._active = False
        weights, self._weights = self._weights, {}
        if not weights:
            return torch.zeros(())
        groups: dict[tuple, list[tuple[str, torch.Tensor]]] = {}
        for (name, factor), weight in weights.items():
            if factor in self.side:
                groups.setdefault((factor, tuple(weight.shape), weight.device), []).append((name, weight))
        with torch.set_grad_enabled(self.lam > 0 and torch.is_grad_enabled()):
            total = None
            for (factor, _, device), items in groups.items():
                names = tuple(name for name, _ in items)
                stacked = torch.stack([w for _, w in items]).float()
                # Cooperative block is exempt: task rows of A / task columns of B start at r_coop.
                floor = None
                if factor == "A":
                    vectors = stacked[:, self.r_coop:]
                else:
                    vectors = stacked[:, :, self.r_coop:].transpose(1, 2)
                    if any(self._mu[n] > 0 for n in names):
                        floor = torch.stack([b_floor(weights[(n, "A")][self.r_coop:], self._mu[n], self._scaling[n])
                                             for n in names]).to(device)
                values = gram_penalty(vectors, self._group_mask(names, device), floor)
                for i, name in enumerate(names):
                    self._last[(name, factor)] = values[i].detach()
                total = values.sum() if total is None else total + values.sum().to(total.device)
        penalty = total / len({name for name, _ in weights})
        if training and self.lam > 0 and torch.is_grad_enabled() and not penalty.requires_grad:
            raise RuntimeError(
                "ThanoRA penalty has no gradient although lam > 0 and training: the LoRA weights seen in the "
                "forward do not require grad (frozen adapter?). Set lam=0 or make the LoRA weights trainable."
            )
        return penalty

    def latest(self) -> dict[str, float]:
        """Latest penalty per module (sum of the selected sides) for the modules seen so far."""
        out: dict[str, float] = {}
        for (name, _), value in self._last.items():
            out[name] = out.get(name, 0.0) + float(value)
        return out

    def remove(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
