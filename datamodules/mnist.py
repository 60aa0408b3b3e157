"""MNIST (LeCun et al., 1998) and Fashion-MNIST (Xiao et al., 2017) in torchvision's on-disk
layout: ROOT/MNIST/raw/ (ROOT/FashionMNIST/raw/) holding the four idx files
train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte
(60,000 training and 10,000 test 28x28 grey images). Read by torchvision's own MNIST class."""

from __future__ import annotations

import logging
import math
import struct
from pathlib import Path

from torchvision.datasets import MNIST, FashionMNIST
from torchvision.datasets.utils import calculate_md5

from datamodules.downloads import download_lock, reason
from datamodules.errors import DatasetError
from datamodules.image import ImageDataModule, Splits, split_off
from harness.numbers import is_int

log = logging.getLogger(__name__)
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")  # fmt: skip


def check_idx(path: Path) -> tuple[int, ...]:
    """The dimensions in an idx file's header (magic 0x0000 08 NDIM: uint8 data, then NDIM
    big-endian sizes), after checking that the file holds exactly that many bytes."""
    with open(path, "rb") as f:
        head = f.read(4)
        if len(head) < 4 or head[:3] != b"\x00\x00\x08" or not 1 <= head[3] <= 3:
            raise DatasetError(f"{path} is not an idx file of uint8 data (header {head.hex()})")
        dims = struct.unpack(f">{head[3]}I", f.read(4 * head[3]).ljust(4 * head[3], b"\0"))
    expected, actual = 4 + 4 * len(dims) + math.prod(dims), path.stat().st_size
    if actual != expected:
        raise DatasetError(
            f"{path} is truncated or corrupt: its header describes {expected} bytes, the file has "
            f"{actual}. Delete it and run again to download it afresh."
        )
    return dims


def whole(path: Path) -> bool:
    """path is an idx file holding all the bytes its header describes."""
    try:
        check_idx(path)
    except (DatasetError, OSError):
        return False
    return True


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
        verify: bool = True,
        label_fraction: float = 1.0,
        seed: int = 0,
        loader: str = "tensor",
        num_workers: int = 2,
    ) -> None:
        super().__init__(
            batch_size,
            augment=augment,
            label_fraction=label_fraction,
            seed=seed,
            loader=loader,
            num_workers=num_workers,
        )
        self.verify = verify  # md5 of the downloaded .gz archives, where present
        if not is_int(val_size) or val_size < 1:
            raise ValueError(f"data.val_size must be a positive integer, got {val_size!r}")
        self.root = Path(root)
        self.download, self.val_size, self.split_seed = download, val_size, split_seed

    @property
    def raw_folder(self) -> Path:
        return self.root / self.dataset_class.__name__ / "raw"

    def prepare_data(self) -> None:
        if not self.download or all(whole(self.raw_folder / f) for f in IDX_FILES):
            return  # only read: a shared, read-only data folder works
        try:
            with download_lock(self.root, self.raw_folder):  # a failure leaves no empty folder
                for f in IDX_FILES:
                    path = self.raw_folder / f
                    if path.exists() and not whole(path):  # torchvision extracts in place
                        log.warning(
                            "%s is cut short (a kill mid-extraction?): extracting it again", path
                        )
                        path.unlink()
                for train in (True, False):
                    self.dataset_class(str(self.root), train=train, download=True)
        except Exception as e:
            raise DatasetError(
                f"could not download {self.dataset_class.__name__} into {self.root}: {reason(e)}. Put its "
                f"idx files in {self.raw_folder} (or set data.root / DATA_DIR to the folder "
                "holding them); no download needed: data=digits"
            ) from e

    def check_files(self) -> None:
        """Published archives (kept beside the idx files after a download) match their md5; each
        idx file is whole; images and labels agree in number."""
        raw = self.raw_folder
        if not all((raw / f).is_file() for f in IDX_FILES):
            return  # reported as "not found" below
        for archive, md5 in self.dataset_class.resources if self.verify else []:
            if (raw / archive).is_file() and calculate_md5(str(raw / archive)) != md5:
                raise DatasetError(
                    f"{raw / archive} is corrupt (md5 differs from the published file): delete "
                    "it and its extracted file and run again to download them afresh."
                )
        dims = {f: check_idx(raw / f) for f in IDX_FILES}
        for prefix in ("train", "t10k"):
            images, labels = (
                dims[f"{prefix}-images-idx3-ubyte"],
                dims[f"{prefix}-labels-idx1-ubyte"],
            )
            if images[0] != labels[0]:
                raise DatasetError(f"{raw}: {prefix} has {images[0]} images but {labels[0]} labels")

    def load_splits(self) -> Splits:
        name = self.dataset_class.__name__
        self.check_files()
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
