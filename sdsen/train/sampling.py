"""The batches of a training run, a pure function of ``(config.seed, step)`` and the data.

A map-style dataset is read through a DataLoader whose batch of step ``s`` is fixed by the
sampler (:class:`_StepBatchSampler`), each item drawn under its own seed, so worker count and
iterator restarts change nothing; an iterable of ready batches is cycled, its ``state_dict``
kept in the checkpoint. :class:`BatchSource` gives both the same ``next_batch()``.
"""

from __future__ import annotations

import contextlib
import functools
import random
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from ..data.pairs import split_pair
from .config import TrainConfig
from .distributed import DistInfo

__all__ = ["BatchSource", "is_map_dataset", "sample_seed"]


def sample_seed(seed: int, pos: int) -> int:
    """The seed of global sample position ``pos`` of a run seeded ``seed`` (32 bits).

    Unlike :func:`sdsen.data.datasets.item_seed` (63 bits, any keys), this is the first 32-bit
    word of the ``SeedSequence``: the seed every committed run's batches were drawn with.

    >>> sample_seed(0, 5) == sample_seed(0, 5), sample_seed(0, 5) == sample_seed(0, 6)
    (True, False)
    """
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, pos]).generate_state(1)[0])


@contextlib.contextmanager
def _seeded_rngs(seed: int) -> Iterator[None]:
    """Seed torch / NumPy / Python RNGs inside the block, restore the outer states after."""
    t, n, p = torch.get_rng_state(), np.random.get_state(), random.getstate()
    torch.manual_seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    random.seed(seed)
    try:
        yield
    finally:
        torch.set_rng_state(t)
        np.random.set_state(n)
        random.setstate(p)


class _SeededItems(Dataset):
    """Wraps a map-style dataset: item ``(index, seed)`` is ``dataset[index]`` under ``seed``.

    Random crops / synthetic rain drawn from the global RNGs inside ``__getitem__`` thus depend
    only on the seed the sampler attaches, not on which worker or iterator produced them.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, seed = key
        with _seeded_rngs(seed):
            return split_pair(self.dataset[index])


class _StepBatchSampler(Sampler):
    """Batches of ``(index, seed)`` for steps ``start, start+1, ...``; a pure function of step.

    Global sample position ``pos = step * global_batch + rank * local_batch + j`` walks through
    epochs of permutations seeded by ``(seed, epoch)``.
    """

    def __init__(
        self, n: int, local_batch: int, rank: int, world: int, seed: int, start: int, stop: int
    ) -> None:
        self.n, self.local_batch, self.rank, self.world = n, local_batch, rank, world
        self.seed, self.start, self.stop = seed, start, stop
        self._epoch, self._perm = -1, np.arange(0)

    def _index(self, pos: int) -> int:
        epoch, offset = divmod(pos, self.n)
        if epoch != self._epoch:
            rng = np.random.default_rng([int(self.seed) & 0xFFFFFFFF, epoch, 0x5D5E])
            self._perm, self._epoch = rng.permutation(self.n), epoch
        return int(self._perm[offset])

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        gb = self.local_batch * self.world
        for step in range(self.start, self.stop):
            base = step * gb + self.rank * self.local_batch
            yield [
                (self._index(base + j), sample_seed(self.seed, base + j))
                for j in range(self.local_batch)
            ]


def is_map_dataset(data: Any) -> bool:
    return (
        not isinstance(data, IterableDataset)
        and hasattr(data, "__getitem__")
        and hasattr(data, "__len__")
        and not isinstance(data, list | tuple)
    )


class BatchSource:
    """Uniform ``next_batch()`` / ``state_dict()`` over datasets and iterables of batches."""

    def __init__(
        self,
        data: Any,
        config: TrainConfig,
        info: DistInfo,
        start_step: int,
        device: torch.device,
    ) -> None:
        self.device = device
        self.data = data
        self.is_dataset = is_map_dataset(data)
        if self.is_dataset:
            n = len(data)
            if n == 0:
                raise ValueError(
                    "the training dataset is empty (check the folder layout: "
                    "sdsen data prepare / PairedImageFolder(root, layout=...))"
                )
            local = config.batch_size // info.world_size
            sampler = _StepBatchSampler(
                n, local, info.rank, info.world_size, config.seed, start_step, config.steps
            )
            gen = torch.Generator().manual_seed(config.seed)
            seed = config.seed
            loader = DataLoader(
                _SeededItems(data),
                batch_sampler=sampler,
                num_workers=config.num_workers,
                pin_memory=device.type == "cuda",
                generator=gen,
                worker_init_fn=functools.partial(_seed_worker, seed),  # picklable (spawn)
                persistent_workers=False,
            )
            self._it: Iterator[Any] | None = iter(loader)
        else:
            self._it = None  # created on first use, after load_state_dict

    def load_state_dict(self, state: Any) -> None:
        if self.is_dataset or state is None:
            return
        if hasattr(self.data, "load_state_dict"):
            self.data.load_state_dict(state)
        else:
            warnings.warn(
                f"{type(self.data).__name__} has no load_state_dict(): resumed data order is "
                "not the same as in an uninterrupted run",
                stacklevel=3,
            )

    def state_dict(self) -> Any:
        if self.is_dataset:
            return None  # the step alone determines the data
        if hasattr(self.data, "state_dict"):
            return self.data.state_dict()
        return None

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._it is None:
            self._it = iter(self.data)
        try:
            batch = next(self._it)
        except StopIteration:
            if self.is_dataset:
                raise
            self._it = iter(self.data)  # a finite iterable of batches: cycle
            try:
                batch = next(self._it)
            except StopIteration:
                raise ValueError("train_data yielded no batches") from None
        rainy, clean = split_pair(batch)
        if rainy.dim() != 4:
            raise ValueError(
                "train_data must be a map-style Dataset of (rainy, clean) pairs or an iterable "
                f"of batches (B, 3, H, W); got a tensor of shape {tuple(rainy.shape)}"
            )
        nb = self.device.type == "cuda"
        return rainy.to(self.device, non_blocking=nb), clean.to(self.device, non_blocking=nb)


def _seed_worker(seed: int, worker_id: int) -> None:
    # items are re-seeded per sample anyway; this only makes worker start-up deterministic
    s = sample_seed(seed, 2**40 + worker_id)
    torch.manual_seed(s)
    np.random.seed(s & 0xFFFFFFFF)
    random.seed(s)
