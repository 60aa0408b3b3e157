"""data=image_folder: image classification on your own images in torchvision's ImageFolder layout,
ROOT/train/CLASS/*, ROOT/test/CLASS/* and optionally ROOT/val/CLASS/* (without it, a seeded,
class-stratified data.val_size of train is held out). Classes are the training folder's
subfolders, sorted (as torchvision's ImageFolder). Files in any format PIL reads, found by
extension (torchvision's list); others are skipped.

Every image is decoded once, into uint8 tensors like the other image data: grey (1 channel) when
every image is, else RGB; resized to data.size x data.size (default: the images' own size, when
they all have one, square). Normalised with the per-channel mean and std of the training images;
data.augment is CIFAR-10's random crop (padding data.size / 8) and flip. A dataset larger than
half the memory available is refused before any decoding. Class names, size, channels, mean and
std travel in every checkpoint (state_dict).

Over 250 lines: finding, checking (one line per bad file or folder), decoding and splitting the
images are one pipeline over one index of files, each step a short function."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from datamodules import DatasetError
from datamodules.image import (
    ImageDataModule,
    Splits,
    check_positive_int,
    check_val_size,
    held_out_count,
    stratified_index,
)

EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".ppm",
    ".bmp",
    ".pgm",
    ".tif",
    ".tiff",
    ".webp",
)  # torchvision's
GREY = ("1", "L")  # PIL modes kept as one channel


def available_memory() -> int:
    """Bytes of memory available to a new allocation (Linux's MemAvailable; else free pages)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())


def header(path: Path) -> tuple[tuple[int, int], str]:
    """(width, height), PIL mode: read from the file's header, nothing decoded."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size, image.mode
    except Exception as e:  # not an image, or a format PIL does not know
        raise DatasetError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None


def decode(path: Path, channels: int, size: int) -> torch.Tensor:
    """-> uint8 (C, size, size)."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except Exception as e:  # truncated or corrupt data behind a good header
        raise DatasetError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    hwc = pixels[..., None] if channels == 1 else pixels
    return torch.from_numpy(hwc.copy()).permute(2, 0, 1)


class ImageFolderData(ImageDataModule):
    def __init__(
        self,
        root: str | None,
        batch_size: int = 64,
        *,
        size: int | None = None,
        val_size: int | float = 0.1,
        split_seed: int = 0,
        augment: bool = False,
        label_fraction: float = 1.0,
        seed: int = 0,
        loader: str = "tensor",
        num_workers: int = 2,
    ) -> None:
        super().__init__(
            batch_size, augment=augment, label_fraction=label_fraction, seed=seed, loader=loader,
            num_workers=num_workers,
        )  # fmt: skip
        if not root:
            raise ValueError(
                "data=image_folder needs data.root=DIR holding train/CLASS/* and test/CLASS/* "
                "(and optionally val/CLASS/*)"
            )
        if size is not None:
            check_positive_int("data.size", size)
        check_val_size(val_size)
        self.root, self.size, self.val_size, self.split_seed = (
            Path(root),
            size,
            val_size,
            split_seed,
        )
        self.class_names: tuple[str, ...] = ()
        self.restored: dict[str, Any] = {}  # a checkpoint's state, loaded before setup

    def load_splits(self) -> Splits:
        files = self._scan()
        heads = {split: [header(p) for p, _ in rows] for split, rows in files.items()}
        every = [
            (p, h) for split in files for (p, _), h in zip(files[split], heads[split], strict=True)
        ]
        channels = self.restored.get("channels") or (
            1 if all(m in GREY for _, (_, m) in every) else 3
        )
        size = self.size or self.restored.get("size") or self._common_size(every)
        count = sum(len(rows) for rows in files.values())
        need, have = count * channels * size * size, available_memory()
        if 2 * need > have:  # the tensors, and a copy while the splits are cut
            raise DatasetError(
                f"{self.root}: {count} images of {channels}x{size}x{size} take {need / 2**30:.1f} GiB "
                f"as uint8, more than half of the {have / 2**30:.1f} GiB of memory available; "
                "set a smaller data.size or use fewer images"
            )
        splits = {
            split: (
                torch.stack([decode(p, channels, size) for p, _ in rows]),
                torch.tensor([label for _, label in rows], dtype=torch.long),
            )
            for split, rows in files.items()
        }
        if "val" not in splits:
            splits["train"], splits["val"] = self._hold_out(*splits["train"])
        if "mean" in self.restored:  # a checkpoint's: normalise as the network was trained
            self.mean, self.std = tuple(self.restored["mean"]), tuple(self.restored["std"])
        else:
            self.mean, self.std = channel_stats(splits["train"][0])
        self.crop_padding = max(1, round(size / 8))  # CIFAR-10: 4 pixels of 32
        return splits

    def _scan(self) -> dict[str, list[tuple[Path, int]]]:
        """Split -> (image file, class index) for the splits present."""
        train = self.root / "train"
        if not train.is_dir():
            raise DatasetError(
                f"data.root={self.root}: no train/ folder (the layout is ROOT/train/CLASS/*, ROOT/test/CLASS/*)"
            )
        names = sorted(p.name for p in train.iterdir() if p.is_dir())
        if len(names) < 2:
            raise DatasetError(
                f"{train}: {len(names)} class folder(s); a classifier needs two or more (train/CLASS/*)"
            )
        if self.restored.get("class_names") and self.restored["class_names"] != names:
            raise DatasetError(
                f"the checkpoint's classes ({', '.join(self.restored['class_names'])}) and the folders of {train} ({', '.join(names)}) differ"
            )
        self.class_names = tuple(names)
        files = {}
        for split in ("train", "val", "test"):
            folder = self.root / split
            if not folder.is_dir():
                if split == "test":
                    raise DatasetError(
                        f"data.root={self.root}: no test/ folder (ROOT/test/CLASS/*)"
                    )
                continue
            rows = []
            for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
                if sub.name not in names:
                    raise DatasetError(f"{sub}: class {sub.name!r} has no folder in {train}")
                found = image_files(sub)
                if not found and split == "train":
                    raise DatasetError(f"{sub}: no image files ({', '.join(EXTENSIONS)})")
                rows += [(p, names.index(sub.name)) for p in found]
            if not rows:
                raise DatasetError(f"{folder}: no image files in its class folders")
            files[split] = rows
        return files

    @staticmethod
    def _common_size(images: list[tuple[Path, tuple[tuple[int, int], str]]]) -> int:
        (first, (size, _)), *rest = images
        for path, (other, _) in rest:
            if other != size:
                raise DatasetError(
                    f"images differ in size ({first} is {size[0]}x{size[1]}, {path} is "
                    f"{other[0]}x{other[1]}): set data.size=N to resize every image to NxN"
                )
        if size[0] != size[1]:
            raise DatasetError(
                f"the images are {size[0]}x{size[1]}, not square: set data.size=N to resize them to NxN"
            )
        return size[0]

    def _hold_out(self, images: torch.Tensor, labels: torch.Tensor):
        count = held_out_count(self.val_size, len(labels))
        if not 0 < count < len(labels):
            raise DatasetError(
                f"data.val_size={self.val_size} holds out {count} of the {len(labels)} images of "
                f"{self.root / 'train'}: give a count in [1, {len(labels) - 1}] or a fraction, or a val/ folder"
            )
        held = stratified_index(labels, count / len(labels), self.split_seed)
        keep = torch.ones(len(labels), dtype=torch.bool)
        keep[held] = False
        return (images[keep], labels[keep]), (images[held], labels[held])

    def state_dict(self) -> dict[str, Any]:
        if self.splits is None:
            return dict(self.restored)
        images = self.splits["train"][0]
        return {
            "class_names": list(self.class_names), "channels": images.shape[1],
            "size": images.shape[-1], "mean": list(self.mean), "std": list(self.std),
        }  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.splits is not None and state.get("class_names") != list(self.class_names):
            raise DatasetError(
                f"the checkpoint's classes ({', '.join(state.get('class_names', []))}) and the "
                f"folders of {self.root / 'train'} ({', '.join(self.class_names)}) differ"
            )
        self.restored = dict(state)


def channel_stats(images: torch.Tensor, chunk: int = 1024) -> tuple[tuple[float, ...], ...]:
    """(mean, std) per channel of uint8 images (N, C, H, W), in [0, 1] units, summed a chunk of
    images at a time in float64: never a float copy of the whole set (4x its uint8 size, which
    the memory check before decoding does not count)."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].to(torch.float64) / 255
        total += x.sum(dim=(0, 2, 3))
        squares += (x * x).sum(dim=(0, 2, 3))
    n = images.numel() // images.shape[1]
    mean = total / n
    std = ((squares - n * mean * mean) / max(n - 1, 1)).clamp_min(0).sqrt().clamp_min(1e-3)
    return tuple(mean.tolist()), tuple(std.tolist())
