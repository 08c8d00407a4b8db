"""Preview batches: a few training samples of each task, as data-driven inits (ThanoRA, CorDA) read them.

Both previews take the same N training samples of each task, drawn without replacement with the run's seed
(`preview_indices`): the first N in file order would favour whatever the file happens to start with (one source,
one image folder, the shortest answers). ThanoRA splits them across ranks (its covariances are summed), CorDA
gives every rank all of them (peft's hook runs in every process).
"""

from __future__ import annotations

import random


class TaskBatches:
    """Re-iterable collated batches of the given samples of one task.

    Re-iterable because covariances may be collected in several passes when they do not fit in memory at once.
    Labels are dropped: a preview only needs the inputs each layer sees.
    """

    def __init__(self, dataset, indices: list[int], collator, batch_size: int):
        if batch_size < 1:
            raise ValueError(f"preview batch size must be >= 1, got {batch_size}")
        self.dataset, self.indices, self.collator, self.batch_size = dataset, indices, collator, batch_size

    def __iter__(self):
        for start in range(0, len(self.indices), self.batch_size):
            batch = self.collator([self.dataset[i] for i in self.indices[start: start + self.batch_size]])
            batch.pop("labels", None)
            yield batch

    def __len__(self) -> int:
        return -(-len(self.indices) // self.batch_size)


def preview_indices(dataset, samples_per_task: int, seed: int) -> dict[str, list[int]]:
    """Per task, `samples_per_task` of its sample indices drawn without replacement by a generator seeded with
    `seed` and the task's name (so adding a task does not change another's draw), in dataset order; all of them
    when the task has fewer. The same on every rank."""
    if samples_per_task < 1:
        raise ValueError(f"preview samples per task must be >= 1, got {samples_per_task}")
    chosen = {}
    for task, indices in dataset.task_indices().items():
        draw = random.Random(f"{seed}/{task}").sample(range(len(indices)), min(samples_per_task, len(indices)))
        chosen[task] = [indices[i] for i in sorted(draw)]
    return chosen


def task_previews(dataset, collator, samples_per_task: int, batch_size: int, seed: int, shard: int = 0,
                  num_shards: int = 1) -> dict[str, TaskBatches]:
    """Per task, the `preview_indices` samples; with `num_shards` > 1 only every `num_shards`-th of them starting
    at `shard` (one rank's share)."""
    return {task: TaskBatches(dataset, indices[shard::num_shards], collator, batch_size)
            for task, indices in preview_indices(dataset, samples_per_task, seed).items()}
