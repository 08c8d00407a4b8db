"""Preview batches: a few training samples of each task, as data-driven inits (ThanoRA, CorDA) read them.

Both previews take each task's first N training samples in dataset order; ThanoRA splits them across ranks
(its covariances are summed), CorDA gives every rank all of them (peft's hook runs in every process).
"""

from __future__ import annotations


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


def task_previews(dataset, collator, samples_per_task: int, batch_size: int, shard: int = 0,
                  num_shards: int = 1) -> dict[str, TaskBatches]:
    """Per task, its first `samples_per_task` samples in dataset order; with `num_shards` > 1 only every
    `num_shards`-th of them starting at `shard` (one rank's share)."""
    return {task: TaskBatches(dataset, indices[:samples_per_task][shard::num_shards], collator, batch_size)
            for task, indices in dataset.task_indices().items()}
