"""Tiny datasets written in the exact on-disk formats the real datamodules read, so the tests run
the real loading code with downloads off."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def class_images(
    rng: np.random.Generator, labels: np.ndarray, shape: tuple[int, ...]
) -> np.ndarray:
    """uint8 images a model can learn: a class-dependent mean brightness per quadrant, plus noise."""
    n = len(labels)
    base = rng.integers(0, 256, size=(10, *shape)).astype(np.float32)  # one template per class
    noise = rng.normal(0, 20, size=(n, *shape))
    return np.clip(base[labels] + noise, 0, 255).astype(np.uint8)


def write_cifar10(root: Path, per_batch: int = 20, seed: int = 0) -> Path:
    """ROOT/cifar-10-batches-py/ with python-pickle batches as the published archive has them."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name in CIFAR_FILES:
        labels = rng.integers(0, 10, size=per_batch)
        images = class_images(rng, labels, (3, 32, 32)).reshape(per_batch, 3072)
        entry = {
            "batch_label": name,
            "labels": labels.tolist(),
            "data": images,
            "filenames": [f"{name}_{i}.png" for i in range(per_batch)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                     "horse", "ship", "truck"], "num_vis": 3072}, f, protocol=2)  # fmt: skip
    return root


def _idx(path: Path, array: np.ndarray) -> None:
    """An idx file (LeCun's format): magic 0x0000 08 NDIM, big-endian sizes, then the bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(
    root: Path, folder: str = "MNIST", n_train: int = 120, n_test: int = 40, seed: int = 0
) -> Path:
    """ROOT/<folder>/raw/ with the four uncompressed idx files torchvision reads."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, size=n)
        _idx(raw / f"{prefix}-images-idx3-ubyte", class_images(rng, labels, (28, 28)))
        _idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


class TokenModel:
    """Stands in for a text model in the check that a model can take the data (only its
    `input_kind` is read)."""

    input_kind = "tokens"

    def __init__(self, vocab_size: int = 0, num_classes: int = 0) -> None:
        pass
