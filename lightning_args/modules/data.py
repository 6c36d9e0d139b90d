"""Batches sliced from tensors in memory: a DataLoader without the per-sample cost.

A ``DataLoader`` over a ``TensorDataset`` indexes one sample at a time and collates them again;
for a data set that fits in memory that is most of the cost of a small model's step. A
:class:`TensorBatches` gathers the epoch's permutation once and yields views of it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch

from lightning_args.errors import ConfigValueError

Batch = tuple[torch.Tensor, ...] | dict[str, torch.Tensor]


class TensorBatches:
    """Iterate over ``tensors`` (a tuple or a dict of equally long tensors) in batches.

    Shuffling is seeded by ``seed`` and the epoch, which Lightning sets through
    :meth:`set_epoch`; a resumed run therefore sees the same order as an uninterrupted one. The
    position in the epoch is part of Lightning's checkpoint (:meth:`state_dict`), so a run
    checkpointed mid-epoch (a preempted job) resumes with the next batch, not the epoch's first.
    Under ``torch.distributed`` each rank takes every ``world_size``-th sample of the permutation.

    Example:
        >>> import torch
        >>> batches = TensorBatches((torch.arange(5), torch.arange(5) * 10), batch_size=2)
        >>> [tuple(t.tolist() for t in b) for b in batches]
        [([0, 1], [0, 10]), ([2, 3], [20, 30]), ([4], [40])]
        >>> len(batches)
        3
    """

    def __init__(
        self,
        tensors: Sequence[torch.Tensor] | Mapping[str, torch.Tensor],
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ConfigValueError(
                f"batch_size={batch_size} is not valid: expected a positive integer. "
                "Fix: data.batch_size=32"
            )
        self._keys: tuple[str, ...] | None = (
            tuple(tensors) if isinstance(tensors, Mapping) else None
        )
        self._tensors: list[torch.Tensor] = (
            list(tensors.values()) if isinstance(tensors, Mapping) else list(tensors)
        )
        lengths = {len(t) for t in self._tensors}
        if len(lengths) != 1:
            raise ConfigValueError(
                f"TensorBatches needs tensors of one length, got lengths {sorted(lengths)}"
            )
        self.num_samples = lengths.pop()
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = 0
        self._position = 0  # batches yielded in the current pass
        self._resume_at: tuple[int, int] | None = None  # (epoch, position) from a checkpoint

    # Lightning calls ``dataloader.sampler.set_epoch(epoch)`` before each epoch, and reads
    # ``batch_sampler`` whenever ``sampler`` exists.
    batch_sampler = None

    @property
    def sampler(self) -> TensorBatches:
        return self

    def set_epoch(self, epoch: int) -> None:
        """Choose the permutation of ``epoch`` (called by Lightning before each epoch)."""
        self.epoch = epoch

    def state_dict(self) -> dict[str, int]:
        """Where the current pass is; Lightning stores it in checkpoints of the training loop."""
        return {"epoch": self.epoch, "position": self._position}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Make the next pass over ``state``'s epoch start after the batches it had yielded."""
        self._resume_at = (int(state["epoch"]), int(state["position"]))

    def _indices(self) -> torch.Tensor | None:
        rank, world = _rank_and_world_size()
        if not self.shuffle and world == 1:
            return None
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_samples, generator=generator)
        else:
            order = torch.arange(self.num_samples)
        per_rank = self.num_samples // world
        return order[rank::world][:per_rank]

    def _local_size(self) -> int:
        _, world = _rank_and_world_size()
        return self.num_samples // world if world > 1 else self.num_samples

    def __len__(self) -> int:
        size = self._local_size()
        if self.drop_last:
            return size // self.batch_size
        return -(-size // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        indices = self._indices()
        # One gather per epoch; every batch below is then a view.
        tensors = self._tensors if indices is None else [t[indices] for t in self._tensors]
        size, step = self._local_size(), self.batch_size
        stop = size - size % step if self.drop_last else size
        skip = 0
        if self._resume_at is not None:
            epoch, skip = self._resume_at
            skip = skip if epoch == self.epoch else 0
            self._resume_at = None
        self._position = skip
        for start in range(skip * step, stop, step):
            self._position += 1
            yield self._pack([t[start : start + step] for t in tensors])

    def _pack(self, parts: list[torch.Tensor]) -> Batch:
        if self._keys is None:
            return tuple(parts)
        return dict(zip(self._keys, parts, strict=True))


def _rank_and_world_size() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1
