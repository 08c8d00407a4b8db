"""Length-grouped sampling: `--train_sampling_strategy group_by_length` and LLaVA's `--group_by_modality_length`.

Padding is wasted compute: a batch costs as much as its longest sample times its size. Both samplers draw a random
permutation (per epoch, from the seed), cut it into mega-batches of a whole number of optimizer steps, sort each
mega-batch by length and hand it out in order, so every step sees samples of similar length while the order of
the mega-batches stays random. With `groups` (LLaVA's modality grouping: image samples and text-only samples),
each group is permuted and cut on its own, and the mega-batches of all groups are shuffled together: a step then
holds one modality only (under ZeRO-3 a text-only step needs no vision pass). The last, partial mega-batch of each
group goes at the end, together.

Lengths come from the dataset without tokenizing or opening anything (`SupervisedDataset.lengths`). The order is
a function of (seed, epoch) only, so every rank draws the same one and a resumed run continues it.
"""

from __future__ import annotations

import torch


def megabatch_size(num_samples: int, step_samples: int, limit: int = 50) -> int:
    """A whole number of steps per mega-batch: up to `limit` steps, but at least 4 mega-batches when the data
    allows (as transformers' LengthGroupedSampler chooses), so some randomness survives on small data."""
    return step_samples * max(1, min(limit, num_samples // (4 * step_samples)))


def grouped_order(lengths: list[int], step_samples: int, generator: torch.Generator,
                  groups: list[int] | None = None) -> list[int]:
    """Indices of all samples, in mega-batches sorted by decreasing length (see the module docstring)."""
    groups = [0] * len(lengths) if groups is None else list(groups)
    size = megabatch_size(len(lengths), step_samples)
    complete, partial = [], []
    for g in sorted(set(groups)):
        members = torch.tensor([i for i, x in enumerate(groups) if x == g])
        order = members[torch.randperm(len(members), generator=generator)].tolist()
        for start in range(0, len(order), size):
            chunk = sorted(order[start: start + size], key=lambda i: lengths[i], reverse=True)
            (complete if len(chunk) == size else partial).append(chunk)
    shuffled = [complete[k] for k in torch.randperm(len(complete), generator=generator).tolist()]
    return [i for chunk in shuffled + partial for i in chunk]


class LengthGroupedSampler(torch.utils.data.Sampler):
    """Sampler over `grouped_order`; `step_samples` is the samples of one optimizer step over all ranks
    (per-device batch x gradient accumulation x world size), so mega-batches align with steps."""

    def __init__(self, lengths: list[int], step_samples: int, groups: list[int] | None = None, seed: int = 0):
        if groups is not None and len(groups) != len(lengths):
            raise ValueError(f"{len(groups)} group labels for {len(lengths)} samples")
        self.lengths, self.step_samples, self.groups, self.seed = list(lengths), step_samples, groups, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by accelerate / the Trainer at the start of every epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(grouped_order(self.lengths, self.step_samples, generator, self.groups))
