"""Length-grouped sampling (`--train_sampling_strategy group_by_length`, `--group_by_modality_length`): every sample
once per epoch, steps of similar length, one modality per step, the same order on every rank."""

from __future__ import annotations

import random

import torch

from llava_thanora.train.sampler import LengthGroupedSampler, grouped_order, megabatch_size


def mixed(n: int = 1000, seed: int = 0):
    rng = random.Random(seed)
    groups = [int(rng.random() < 0.7) for _ in range(n)]  # 70% image samples
    lengths = [rng.randint(20, 400) + 576 * g for g in groups]
    return lengths, groups


def padding(order, lengths, batch):
    return sum(max(lengths[i] for i in order[s: s + batch]) * len(order[s: s + batch])
               - sum(lengths[i] for i in order[s: s + batch]) for s in range(0, len(order), batch))


def test_every_sample_once_and_less_padding_than_random():
    lengths, _ = mixed()
    order = grouped_order(lengths, 16, torch.Generator().manual_seed(0))
    assert sorted(order) == list(range(len(lengths)))
    shuffled = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(0)).tolist()
    assert padding(order, lengths, 16) < 0.2 * padding(shuffled, lengths, 16)


def test_modality_groups_fill_whole_steps():
    """With batch 4 on 2 ranks (8 samples a step), every step but those of the last, mixed mega-batch holds one
    modality; mega-batches are sorted by decreasing length, so a step's samples are close in length."""
    lengths, groups = mixed()
    step = 8
    order = grouped_order(lengths, step, torch.Generator().manual_seed(1), groups)
    assert sorted(order) == list(range(len(lengths)))
    size = megabatch_size(len(lengths), step)
    tail = sum(n % size for n in (groups.count(0), groups.count(1)))
    steps = [order[s: s + step] for s in range(0, len(order) - tail, step)]
    assert all(len({groups[i] for i in s}) == 1 for s in steps)
    assert any(groups[s[0]] == 0 for s in steps) and any(groups[s[0]] == 1 for s in steps)  # interleaved at random
    for start in range(0, len(order) - tail, size):
        chunk = [lengths[i] for i in order[start: start + size]]
        assert chunk == sorted(chunk, reverse=True)


def test_order_is_a_function_of_seed_and_epoch():
    lengths, groups = mixed()
    a, b = LengthGroupedSampler(lengths, 16, groups, seed=3), LengthGroupedSampler(lengths, 16, groups, seed=3)
    assert list(a) == list(b)  # two ranks draw the same order
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first and sorted(a) == sorted(first)
    b.set_epoch(1)
    assert list(a) == list(b)
