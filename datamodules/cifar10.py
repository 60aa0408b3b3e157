"""CIFAR-10 (Krizhevsky, 2009) in torchvision's on-disk layout: ROOT/cifar-10-batches-py/ holding
the python-pickle batches data_batch_1..5 and test_batch (10,000 images each, rows of 3072 bytes:
1024 red, 1024 green, 1024 blue) and batches.meta."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import CIFAR10, utils

from datamodules import DatasetError
from datamodules.downloads import download_lock, reason
from datamodules.image import ImageDataModule, Splits, split_off

FOLDER = "cifar-10-batches-py"
# (file name, md5) of the published files, as torchvision lists them.
FILES = [(name, md5) for name, md5 in CIFAR10.train_list + CIFAR10.test_list]


# What the batches refer to by name: numpy's array reconstruction (numpy 1 and 2 module names) and
# the codec protocol 2 writes bytes with. Anything else (os.system, ...) could run code: refused.
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class BatchUnpickler(pickle.Unpickler):
    """Loads dicts, lists, strings, numbers and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: a CIFAR-10 batch holds only numpy arrays, "
                "lists and strings (unpickling anything else could run code)"
            )
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickle batch -> images uint8 (N, 3, 32, 32), labels int64 (N,)."""
    try:
        with open(path, "rb") as f:
            entry = BatchUnpickler(f, encoding="latin1").load()
        images = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(entry.get("labels", entry.get("fine_labels")), dtype=np.int64)
    except Exception as e:  # a truncated or foreign file fails in many ways
        raise DatasetError(
            f"{path} is not a readable CIFAR-10 batch ({type(e).__name__}: {e})"
        ) from e
    if len(images) != len(labels):
        raise DatasetError(f"{path} holds {len(images)} images but {len(labels)} labels")
    return images, labels


def extract(archive: Path, folder: Path) -> None:
    """The archive's batch files into folder, each under its name only once whole: extracted
    beside it first (tar writes in place, so a kill would leave a file cut short), then renamed."""
    tmp = folder.with_name(f".{folder.name}.extracting")
    shutil.rmtree(tmp, ignore_errors=True)  # a killed run's
    try:
        utils.extract_archive(str(archive), str(tmp))
        folder.mkdir(exist_ok=True)
        for path in (tmp / FOLDER).iterdir():
            os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class CIFAR10DataModule(ImageDataModule):
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)
    class_names = (
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    )  # fmt: skip

    def __init__(
        self,
        root: str,
        batch_size: int = 128,
        *,
        download: bool = True,
        val_size: int = 5000,
        split_seed: int = 0,
        augment: bool = True,
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
        if not isinstance(val_size, int) or not 0 < val_size < 50000:
            raise ValueError(f"data.val_size must be an integer in [1, 49999], got {val_size!r}")
        self.root = Path(root)
        self.download, self.val_size, self.split_seed = download, val_size, split_seed
        self.verify = verify  # md5 of every batch file against the published ones

    def prepare_data(self) -> None:
        folder = self.root / FOLDER
        if not self.download or all((folder / name).exists() for name, _ in FILES):
            return  # only read: a shared, read-only data folder works
        with download_lock(self.root, folder):  # a failure leaves no empty folder
            if all((folder / name).exists() for name, _ in FILES):
                return
            archive = self.root / CIFAR10.filename
            try:
                utils.download_url(CIFAR10.url, str(self.root), CIFAR10.filename, CIFAR10.tgz_md5)
                extract(archive, folder)
            except Exception as e:
                if not utils.check_integrity(str(archive), CIFAR10.tgz_md5):
                    archive.unlink(missing_ok=True)  # cut short: of no use to the next run
                raise DatasetError(
                    f"could not download CIFAR-10 into {self.root}: {reason(e)}. Put the published "
                    f"{FOLDER}/ there (or set data.root / DATA_DIR to where it is); "
                    "no download needed: data=digits"
                ) from e

    def load_splits(self) -> Splits:
        folder = self.root / FOLDER
        missing = [name for name, _ in FILES if not (folder / name).exists()]
        if missing:
            hint = "" if self.download else " (data.download=false)"
            raise DatasetError(
                f"CIFAR-10 not found: {folder} lacks {', '.join(missing)}{hint}. Set data.root (or "
                "DATA_DIR) to the folder holding cifar-10-batches-py, or allow data.download=true."
            )
        if self.verify:
            for name, md5 in FILES:
                if utils.calculate_md5(str(folder / name)) != md5:
                    raise DatasetError(
                        f"{folder / name} is corrupt (md5 differs from the published file): "
                        "delete it and run again to download it afresh."
                    )
        parts = [read_batch(folder / name) for name, _ in CIFAR10.train_list]
        train_x = torch.from_numpy(np.concatenate([p[0] for p in parts]))
        train_y = torch.from_numpy(np.concatenate([p[1] for p in parts]))
        test_x, test_y = (torch.from_numpy(a) for a in read_batch(folder / "test_batch"))
        train, val = split_off(train_x, train_y, self.val_size, self.split_seed)
        return {"train": train, "val": val, "test": (test_x, test_y)}
