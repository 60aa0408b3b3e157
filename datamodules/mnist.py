"""MNIST (LeCun et al., 1998) and Fashion-MNIST (Xiao et al., 2017) in torchvision's on-disk
layout: ROOT/MNIST/raw/ (ROOT/FashionMNIST/raw/) holding the four idx files
train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte
(60,000 training and 10,000 test 28x28 grey images), or, where an extracted file is absent, its
gzip archive NAME.gz beside it, read as it is (Debian's dataset-fashion-mnist ships the archives
recompressed: other bytes, the same content). What is checked is the content: each idx file's
header and size and, for Fashion-MNIST files of the published dimensions, the md5 of the
decompressed content (data.verify); never how the archive was compressed."""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import struct
import zlib
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torchvision.datasets import MNIST, FashionMNIST

from datamodules import DatasetError
from datamodules.downloads import download_lock, reason
from datamodules.image import ImageDataModule, Splits, split_off
from harness.numbers import is_int

log = logging.getLogger(__name__)
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")  # fmt: skip


def idx_source(raw: Path, name: str) -> Path | None:
    """The extracted idx file if whole, else its .gz archive, else what is there (whose read then
    names the damage), else None."""
    extracted, archive = raw / name, raw / f"{name}.gz"
    if extracted.is_file() and whole(extracted):
        return extracted
    for path in (archive, extracted):
        if path.is_file():
            return path
    return None


def read_idx(path: Path) -> bytes:
    """An idx file's content, decompressed if it is a .gz archive (gzip checks its CRC)."""
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path) as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:  # not gzip, truncated, or a failed CRC
        raise DatasetError(
            f"{path} is not a readable gzip archive ({e}): delete it and run again to download it "
            "afresh, or put the extracted idx file beside it"
        ) from None


def check_idx(path: Path, data: bytes | None = None, size: int | None = None) -> tuple[int, ...]:
    """The dimensions in an idx file's header (magic 0x0000 08 NDIM: uint8 data, then NDIM
    big-endian sizes), after checking that the content (`size` bytes, else len(data)) holds
    exactly that many bytes."""
    data = read_idx(path) if data is None else data
    head = data[:4]
    if len(head) < 4 or head[:3] != b"\x00\x00\x08" or not 1 <= head[3] <= 3:
        raise DatasetError(f"{path} is not an idx file of uint8 data (header {head.hex()})")
    dims = struct.unpack(f">{head[3]}I", data[4 : 4 + 4 * head[3]].ljust(4 * head[3], b"\0"))
    expected, actual = 4 + 4 * len(dims) + math.prod(dims), len(data) if size is None else size
    if actual != expected:
        raise DatasetError(
            f"{path} is truncated or corrupt: its header describes {expected} bytes, the "
            f"{'decompressed ' if path.suffix == '.gz' else ''}file has {actual}. Delete it and run "
            "again to download it afresh."
        )
    return dims


def whole(path: Path) -> bool:
    """path, an extracted idx file, holds all the bytes its header describes (its 16-byte header
    and its size are read, not its content: a kill mid-extraction cuts a file short)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
        check_idx(path, head[: 4 + 4 * head[3]] if len(head) >= 4 and 1 <= head[3] <= 3 else head,
                  size=path.stat().st_size)  # fmt: skip
    except (DatasetError, OSError):
        return False
    return True


def idx_array(data: bytes, dims: tuple[int, ...]) -> torch.Tensor:
    """The uint8 content after the header, shaped by its dimensions."""
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * len(dims))
    return torch.from_numpy(body.reshape(dims).copy())


class MNISTDataModule(ImageDataModule):
    dataset_class: type[MNIST] = MNIST
    # idx file -> (its published dimensions, md5 of its content), where known. MNIST's: none here,
    # so its files get the header and size checks only.
    published: ClassVar[dict[str, tuple[tuple[int, ...], str]]] = {}
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
        self.verify = verify  # md5 of the (decompressed) idx content, where the published is known
        if not is_int(val_size) or val_size < 1:
            raise ValueError(f"data.val_size must be a positive integer, got {val_size!r}")
        self.root = Path(root)
        self.download, self.val_size, self.split_seed = download, val_size, split_seed

    @property
    def raw_folder(self) -> Path:
        return self.root / self.dataset_class.__name__ / "raw"

    def prepare_data(self) -> None:
        cut_short = [
            f
            for f in IDX_FILES
            if (self.raw_folder / f).exists() and not whole(self.raw_folder / f)
        ]
        if not self.download or (all(self.sources().values()) and not cut_short):
            return  # torchvision would download again archives that differ from the published bytes
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

    def sources(self) -> dict[str, Path | None]:
        return {name: idx_source(self.raw_folder, name) for name in IDX_FILES}

    def read_files(self) -> dict[str, torch.Tensor]:
        """Idx file name -> its array, after checking each file's header and size, its content
        md5 (data.verify, where the published content's is known) and that images and labels
        agree in number."""
        sources = self.sources()
        missing = [name for name, path in sources.items() if path is None]
        if missing:
            name = self.dataset_class.__name__
            hint = "" if self.download else " (data.download=false)"
            raise DatasetError(
                f"{name} not found in {self.raw_folder}{hint}: it needs the four idx files (or their "
                f".gz archives), lacks {', '.join(missing)}. Set data.root (or DATA_DIR) to the "
                f"folder holding {name}/raw, or allow data.download=true."
            )
        arrays = {}
        for name, path in sources.items():
            data = read_idx(path)
            dims = check_idx(path, data)
            published = self.published.get(name)
            of_published_size = published is not None and dims == published[0]
            if self.verify and of_published_size and hashlib.md5(data).hexdigest() != published[1]:
                raise DatasetError(
                    f"{path} is corrupt: its {'decompressed ' if path.suffix == '.gz' else ''}"
                    f"content's md5 differs from the published {self.dataset_class.__name__}'s "
                    f"({published[1]}); delete it and run again to download it afresh, or set "
                    "data.verify=false for a file you changed on purpose."
                )
            arrays[name] = idx_array(data, dims)
        for prefix in ("train", "t10k"):
            images, labels = (
                arrays[f"{prefix}-images-idx3-ubyte"],
                arrays[f"{prefix}-labels-idx1-ubyte"],
            )
            if len(images) != len(labels):
                raise DatasetError(
                    f"{self.raw_folder}: {prefix} has {len(images)} images but {len(labels)} labels"
                )
        return arrays

    def load_splits(self) -> Splits:
        arrays = self.read_files()
        train_x, test_x = arrays["train-images-idx3-ubyte"], arrays["t10k-images-idx3-ubyte"]
        train_y = arrays["train-labels-idx1-ubyte"].long()
        test_y = arrays["t10k-labels-idx1-ubyte"].long()
        # uint8 (N, 28, 28) -> (N, 1, 28, 28)
        train_part, val = split_off(train_x.unsqueeze(1), train_y, self.val_size, self.split_seed)
        return {"train": train_part, "val": val, "test": (test_x.unsqueeze(1), test_y)}


class FashionMNISTDataModule(MNISTDataModule):
    dataset_class = FashionMNIST
    # md5 of the decompressed idx files, computed from Debian's dataset-fashion-mnist
    # (0.0~git20200523.55506a9-1, zalandoresearch/fashion-mnist's data/fashion/*.gz recompressed).
    published: ClassVar[dict[str, tuple[tuple[int, ...], str]]] = {
        "train-images-idx3-ubyte": ((60000, 28, 28), "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
        "train-labels-idx1-ubyte": ((60000,), "9018921c3c673c538a1fc5bad174d6f9"),
        "t10k-images-idx3-ubyte": ((10000, 28, 28), "8181f5470baa50b63fa0f6fddb340f0a"),
        "t10k-labels-idx1-ubyte": ((10000,), "15d484375f8d13e6eb1aabb0c3f46965"),
    }
    mean = (0.2860,)
    std = (0.3530,)
    class_names = (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    )  # fmt: skip
