"""Batches from a dataset held in memory as tensors, on the training device.

The whole split lives in a few tensors (uint8 images, int64 labels...). A batch is one
index_select per tensor plus a batch-wide transform (augmentation, normalisation), so there is no
per-sample Python and no worker process: the approach of the fastest CIFAR-10 trainers (airbench).

Randomness is a pure function of (seed, epoch, batch index, rank): the epoch's order comes from
(seed, epoch) and each batch's augmentation from (seed, epoch, batch, rank). A run resumed
mid-epoch therefore sees exactly the batches it would have seen, and every rank of a distributed
run shares one permutation and takes its own strided slice of it (as torch's DistributedSampler
does), so the ranks' batches b together hold the samples of a one-process run's batch b with the
global batch size; each rank augments its part with its own random draws.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

Batch = tuple[torch.Tensor, ...]
Transform = Callable[[Batch, torch.Generator], Batch]


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from several integers (BLAKE2b of their bytes: about 1 us, where
    numpy's SeedSequence takes 50 to 100 us, paid on every batch)."""
    data = b"".join(int(p).to_bytes(16, "little", signed=True) for p in parts)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") >> 1


class EpochSampler:
    """This rank's sample indices for one epoch. Named and shaped like a sampler so that
    Lightning's fit loop calls `set_epoch` on it at the start of every epoch."""

    def __init__(self, size: int, *, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1):
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        # Every rank gets the same count (the tail that does not divide evenly is left out of
        # training; evaluation shards keep every sample, so their counts may differ by one).
        if self.shuffle:
            return self.size // self.world_size
        return len(range(self.rank, self.size, self.world_size))

    def indices(self) -> torch.Tensor:
        if self.shuffle:
            g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
            order = torch.randperm(self.size, generator=g)
            return order[self.rank :: self.world_size][: len(self)]
        return torch.arange(self.rank, self.size, self.world_size)


class TensorLoader:
    """An iterable of batches over `tensors` (all of the same length N, first dimension)."""

    def __init__(
        self,
        tensors: Sequence[torch.Tensor],
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        transform: Transform | None = None,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if len({len(t) for t in tensors}) != 1:
            raise ValueError("all tensors of a TensorLoader need the same length")
        self.tensors = tuple(tensors)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.transform = transform
        self.device = torch.device(device)
        self.seed = seed
        self.sampler = EpochSampler(
            len(self.tensors[0]), shuffle=shuffle, seed=seed, rank=rank, world_size=world_size
        )
        self.batch_sampler = None  # as torch's DataLoader has, for Lightning's introspection
        self._position = (0, 0)  # (epoch, batches of it handed out)
        self._resume_at = (0, 0)  # (epoch, batch) set by load_state_dict: where to start once

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        # A generator: nothing runs until the first batch is asked for, after set_epoch.
        if self.tensors[0].device != self.device:
            self.tensors = tuple(t.to(self.device) for t in self.tensors)
        indices = self.sampler.indices().to(self.device)
        # A checkpoint saved at the end of an epoch says (epoch e, all batches done); Lightning
        # then moves on to epoch e + 1 before iterating, which must start at its first batch.
        resume_epoch, resume_batch = self._resume_at
        start = resume_batch if resume_epoch == self.sampler.epoch else 0
        self._resume_at = (0, 0)
        self._position = (self.sampler.epoch, start)
        for b in range(start, len(self)):
            idx = indices[b * self.batch_size : (b + 1) * self.batch_size]
            batch = tuple(t.index_select(0, idx) for t in self.tensors)
            if self.transform is not None:
                g = torch.Generator(device=self.device)
                g.manual_seed(derive_seed(self.seed, self.sampler.epoch, b, self.sampler.rank))
                batch = self.transform(batch, g)
            self._position = (self.sampler.epoch, b + 1)
            yield batch

    # Lightning saves these with each checkpoint and restores them on resume. It asks for the
    # state at a batch end, after that batch was handed out and before the next one is made: the
    # loader has a length, so Lightning's fetcher does not prefetch (tested).
    def state_dict(self) -> dict[str, int]:
        epoch, handed_out = self._position
        # After set_epoch for a new epoch, before its first batch: nothing of it handed out yet.
        return {
            "epoch": self.sampler.epoch,
            "next_batch": handed_out if epoch == self.sampler.epoch else 0,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.set_epoch(state["epoch"])
        self._resume_at = (state["epoch"], state["next_batch"])


def shuffles(trainer: Any, train: bool) -> bool:
    """Training batches are shuffled, except under Lightning's overfit_batches, which means "the
    same few batches every epoch"."""
    return train and not (trainer and trainer.overfit_batches)


def trainer_loader(
    trainer: Any,
    tensors: Sequence[torch.Tensor],
    batch_size: int,
    *,
    train: bool,
    seed: int,
    transform: Transform | None = None,
) -> TensorLoader:
    """A TensorLoader on `trainer`'s device and shard of the data (no trainer: CPU, one process).
    Training batches are shuffled and the last partial one dropped (a batch of one would break
    BatchNorm), except under overfit_batches, which means the same few batches every epoch."""
    return TensorLoader(
        tensors,
        batch_size,
        shuffle=shuffles(trainer, train),
        drop_last=train,
        seed=seed,
        transform=transform,
        device=trainer.strategy.root_device if trainer else "cpu",
        rank=trainer.global_rank if trainer else 0,
        world_size=trainer.world_size if trainer else 1,
    )


class SplitLoaders:
    """train/val/test_dataloader from the datamodule's own `_loader(split, train)`; listed before
    LightningDataModule in a datamodule's bases."""

    def _loader(self, split: str, train: bool) -> Any:
        raise NotImplementedError

    def train_dataloader(self) -> Any:
        return self._loader("train", train=True)

    def val_dataloader(self) -> Any:
        return self._loader("val", train=False)

    def test_dataloader(self) -> Any:
        return self._loader("test", train=False)
