"""The shared machinery of the image datamodules: splits held as uint8 tensors, batches built on
the training device by a TensorLoader, augmentation and normalisation done a batch at a time.

A subclass says where its images come from (`load_splits`) and gives its normalisation constants
and class names as class attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.augment import normalize, random_crop, random_flip
from datamodules.tensor_loader import (
    Batch,
    SplitLoaders,
    TensorLoader,
    shuffles,
    trainer_loader,
)
from harness.numbers import is_int, is_number

# split name -> (images uint8 (N, C, H, W), labels int64 (N,))
Splits = dict[str, tuple[torch.Tensor, torch.Tensor]]


def check_positive_int(name: str, value: object) -> None:
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_fraction(name: str, value: object, *, allow_zero: bool = True) -> None:
    if not is_number(value) or not (0 <= value < 1) or (value == 0 and not allow_zero):
        allowed = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(f"{name} must be a number in {allowed}, got {value!r}")


def split_off(
    images: torch.Tensor, labels: torch.Tensor, count: int, seed: int
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """A seeded random split: (the rest, `count` held-out samples)."""
    if not 0 < count < len(labels):
        raise ValueError(f"cannot hold out {count} of {len(labels)} samples")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    rest, held = order[:-count].sort().values, order[-count:].sort().values
    return (images[rest], labels[rest]), (images[held], labels[held])


def labelled_subset(
    images: torch.Tensor, labels: torch.Tensor, fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded, class-stratified `fraction` of (images, labels), in their original order.

    round(fraction * N) samples in all; each class keeps fraction * (its count), rounded by
    largest remainder so that the shares add up to that total exactly.
    """
    total = round(fraction * len(labels))
    classes = labels.unique()
    if total < len(classes):
        raise ValueError(
            f"data.label_fraction={fraction} keeps {total} of {len(labels)} training images, fewer "
            f"than the {len(classes)} classes (use a fraction of at least {len(classes) / len(labels):.4g})"
        )
    index = stratified_index(labels, fraction, seed)
    return images[index], labels[index]


def stratified_index(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """The sorted indices of a seeded, class-stratified `fraction` of `labels`: round(fraction *
    N) in all, each class giving fraction * (its count), rounded by largest remainder."""
    total = round(fraction * len(labels))
    classes, counts = labels.unique(return_counts=True)
    quota = fraction * counts.double()
    share = quota.floor().long()
    extra = total - int(share.sum())  # 0 <= extra < number of classes
    share[torch.argsort(quota - share, descending=True, stable=True)[:extra]] += 1
    g = torch.Generator().manual_seed(seed)
    keep = [
        torch.nonzero(labels == c).flatten()[torch.randperm(int(n), generator=g)[:k]]
        for c, n, k in zip(classes.tolist(), counts.tolist(), share.tolist(), strict=True)
    ]
    return torch.cat(keep).sort().values


def held_out_count(val_size: int | float, total: int) -> int:
    """data.val_size as a number of examples: a count (int >= 1) or a fraction in (0, 1)."""
    return val_size if isinstance(val_size, int) else round(val_size * total)


def check_val_size(val_size: object) -> None:
    is_count = isinstance(val_size, int) and not isinstance(val_size, bool) and val_size >= 1
    is_fraction = isinstance(val_size, float) and 0 < val_size < 1
    if not (is_count or is_fraction):
        raise ValueError(
            "data.val_size must be a number of examples (an integer >= 1) or a fraction of the "
            f"training split in (0, 1), got {val_size!r}"
        )


class PILImages(Dataset):
    """A split as torchvision's own datasets give it: one PIL image at a time through per-image
    transforms (what loader="dataloader" feeds a torch DataLoader)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable) -> None:
        # uint8 (N, C, H, W) -> numpy (N, H, W, C), or (N, H, W) for grey: the layout PIL reads
        hwc = images.permute(0, 2, 3, 1)
        self.images = (hwc[..., 0] if images.shape[1] == 1 else hwc).contiguous().numpy()
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


class ImageDataModule(SplitLoaders, L.LightningDataModule):
    input_kind: ClassVar[str] = "image"
    mean: ClassVar[tuple[float, ...]]
    std: ClassVar[tuple[float, ...]]
    class_names: ClassVar[tuple[str, ...]]
    crop_padding: ClassVar[int] = 4  # pixels of zero padding for the random-crop augmentation
    LOADERS: ClassVar[tuple[str, ...]] = ("tensor", "dataloader")

    def __init__(
        self,
        batch_size: int,
        *,
        augment: bool = False,
        label_fraction: float = 1.0,
        seed: int = 0,
        loader: str = "tensor",
        num_workers: int = 2,
    ) -> None:
        super().__init__()
        check_positive_int("data.batch_size", batch_size)
        if not is_number(label_fraction) or not 0 < label_fraction <= 1:
            raise ValueError(
                f"data.label_fraction must be a number in (0, 1], got {label_fraction!r}"
            )
        if loader not in self.LOADERS:
            raise ValueError(
                f"data.loader must be one of {', '.join(self.LOADERS)}, got {loader!r}"
            )
        if not is_int(num_workers) or num_workers < 0:
            raise ValueError(f"data.num_workers must be an integer >= 0, got {num_workers!r}")
        self.batch_size = batch_size
        self.augment = augment
        self.label_fraction = label_fraction
        self.seed = seed
        self.loader, self.num_workers = loader, num_workers
        self.splits: Splits | None = None

    def load_splits(self) -> Splits:
        """Return the "train", "val" and "test" splits; called once, by setup()."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        splits = self.load_splits()
        if self.label_fraction < 1:
            # Only the training labels are scarce: validation and test stay whole. The subset is
            # drawn with the run seed, so seeds differ in which labels they see and the spread
            # over seeds includes that luck; runs of one seed all see the same subset.
            train = labelled_subset(*splits["train"], self.label_fraction, self.seed)
            if len(train[1]) < self.batch_size:
                raise ValueError(
                    f"data.label_fraction={self.label_fraction} keeps {len(train[1])} training "
                    f"images, fewer than one batch (data.batch_size={self.batch_size})"
                )
            splits["train"] = train
        self.splits = splits

    @property
    def dims(self) -> dict[str, object]:
        """What a model and a LightningModule need to know about this data."""
        images = self._split("train")[0]
        return {
            "in_channels": images.shape[1],
            "image_size": images.shape[2],
            "num_classes": len(self.class_names),
            "class_names": list(self.class_names),
        }

    def _split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if self.splits is None:
            raise RuntimeError("call setup() before asking for data")
        return self.splits[name]

    def _loader(self, split: str, train: bool) -> TensorLoader | DataLoader:
        if self.loader == "dataloader":
            return self._dataloader(split, train, shuffle=shuffles(self.trainer, train))
        transform = self.train_transform if train else self.eval_transform
        return trainer_loader(
            self.trainer, self._split(split), self.batch_size, train=train, seed=self.seed,
            transform=transform,
        )  # fmt: skip

    def _dataloader(self, split: str, train: bool, shuffle: bool) -> DataLoader:
        """The classic path: worker processes decode and augment one PIL image at a time, and
        Lightning moves each batch to the device (and, under DDP, shards the data with a
        DistributedSampler). The same batches in distribution as the tensor path, far slower."""
        on_gpu = bool(self.trainer) and self.trainer.strategy.root_device.type == "cuda"
        return DataLoader(
            PILImages(*self._split(split), self.pil_transform(train)),
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=train,
            num_workers=self.num_workers,
            pin_memory=on_gpu,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def pil_transform(self, train: bool) -> Callable:
        """torchvision's per-image equivalent of train_transform / eval_transform."""
        from torchvision import transforms as T

        size = self._split("train")[0].shape[-1]
        crop = [T.RandomCrop(size, padding=self.crop_padding), T.RandomHorizontalFlip()]
        return T.Compose(
            [
                *(crop if train and self.augment else []),
                T.ToTensor(),
                T.Normalize(self.mean, self.std),
            ]
        )

    def train_transform(self, batch: Batch, g: torch.Generator) -> Batch:
        x, y = batch
        if self.augment:
            x = random_flip(random_crop(x, self.crop_padding, g), g)
        return normalize(x, self.mean, self.std), y

    def eval_transform(self, batch: Batch, g: torch.Generator) -> Batch:
        x, y = batch
        return normalize(x, self.mean, self.std), y
