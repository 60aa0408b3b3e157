"""MNIST (LeCun et al., 1998) and Fashion-MNIST (Xiao et al., 2017) in torchvision's on-disk
layout: ROOT/MNIST/raw/ (ROOT/FashionMNIST/raw/) holding the four idx files
train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte
(60,000 training and 10,000 test 28x28 grey images). Read by torchvision's own MNIST class."""

from __future__ import annotations

from pathlib import Path

from torchvision.datasets import MNIST, FashionMNIST

from datamodules.download import download_lock
from datamodules.errors import DatasetError
from datamodules.image import ImageDataModule, Splits, split_off


class MNISTDataModule(ImageDataModule):
    dataset_class: type[MNIST] = MNIST
    mean = (0.1307,)
    std = (0.3081,)
    class_names = tuple(str(d) for d in range(10))

    def __init__(
        self,
        root: str,
        batch_size: int = 128,
        *,
        download: bool = True,
        val_size: int = 5000,
        split_seed: int = 0,
        augment: bool = False,
        seed: int = 0,
        loader: str = "tensor",
        num_workers: int = 2,
    ) -> None:
        super().__init__(
            batch_size, augment=augment, seed=seed, loader=loader, num_workers=num_workers
        )
        if isinstance(val_size, bool) or not isinstance(val_size, int) or val_size < 1:
            raise ValueError(f"data.val_size must be a positive integer, got {val_size!r}")
        self.root = Path(root)
        self.download, self.val_size, self.split_seed = download, val_size, split_seed

    @property
    def raw_folder(self) -> Path:
        return self.root / self.dataset_class.__name__ / "raw"

    def prepare_data(self) -> None:
        if not self.download:
            return
        try:
            with download_lock(self.root):
                for train in (True, False):
                    self.dataset_class(str(self.root), train=train, download=True)
        except Exception as e:
            raise DatasetError(
                f"could not download {self.dataset_class.__name__} into {self.root}: {e}"
            ) from e

    def load_splits(self) -> Splits:
        name = self.dataset_class.__name__
        try:
            train = self.dataset_class(str(self.root), train=True, download=False)
            test = self.dataset_class(str(self.root), train=False, download=False)
        except RuntimeError as e:  # torchvision: "Dataset not found. You can use download=True..."
            hint = "" if self.download else " (data.download=false)"
            raise DatasetError(
                f"{name} not found in {self.raw_folder}{hint}: it needs the four idx files. Set "
                f"data.root (or DATA_DIR) to the folder holding {name}/raw, or allow data.download=true."
            ) from e
        except Exception as e:  # truncated or foreign idx files fail inside torchvision's reader
            raise DatasetError(
                f"{name} files in {self.raw_folder} are unreadable ({type(e).__name__}: {e})"
            ) from e
        # uint8 (N, 28, 28) -> (N, 1, 28, 28)
        train_part, val = split_off(
            train.data.unsqueeze(1), train.targets, self.val_size, self.split_seed
        )
        return {"train": train_part, "val": val, "test": (test.data.unsqueeze(1), test.targets)}


class FashionMNISTDataModule(MNISTDataModule):
    dataset_class = FashionMNIST
    mean = (0.2860,)
    std = (0.3530,)
    class_names = (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    )  # fmt: skip
