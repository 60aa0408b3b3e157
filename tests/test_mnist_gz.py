"""MNIST and Fashion-MNIST are read from their .gz archives where the extracted idx files are
absent, and checked by what they hold (the decompressed content), not by how they were
compressed: Debian's dataset-fashion-mnist ships the published files recompressed."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import pytest
import torch

from datamodules import DatasetError
from datamodules.mnist import IDX_FILES, FashionMNISTDataModule, MNISTDataModule, check_idx


def gz_only(data_root: Path, tmp_path: Path, folder: str, level: int, mtime: int) -> Path:
    """A copy of the fixture's raw/ with each idx file replaced by an archive of it written with
    this compression level and time stamp (other bytes than any other archive of it)."""
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    for name in IDX_FILES:
        data = (data_root / folder / "raw" / name).read_bytes()
        (raw / f"{name}.gz").write_bytes(gzip.compress(data, compresslevel=level, mtime=mtime))
    return raw


def splits(dm) -> dict:
    dm.setup()
    return dm.splits


def published_as_fixture(data_root: Path, monkeypatch) -> None:
    """Make the fixture files Fashion-MNIST's "published" content (dimensions and md5)."""
    raw = data_root / "FashionMNIST" / "raw"
    table = {
        n: (check_idx(raw / n), hashlib.md5((raw / n).read_bytes()).hexdigest()) for n in IDX_FILES
    }
    monkeypatch.setattr(FashionMNISTDataModule, "published", table)


@pytest.mark.parametrize(
    ("cls", "folder"), [(MNISTDataModule, "MNIST"), (FashionMNISTDataModule, "FashionMNIST")]
)
def test_archives_alone_give_the_extracted_files_tensors(
    cls, folder: str, data_root: Path, tmp_path: Path, monkeypatch
) -> None:
    published_as_fixture(data_root, monkeypatch)
    reference = splits(cls(str(data_root), download=False, val_size=20))
    for level, mtime in ((1, 12345), (9, 0)):
        gz_only(data_root, tmp_path / f"l{level}", folder, level, mtime)
        # download=true too: the archives are there, so nothing is fetched again
        monkeypatch.setattr(
            "datamodules.mnist.download_lock", lambda root: pytest.fail("downloads")
        )
        dm = cls(str(tmp_path / f"l{level}"), download=True, val_size=20)
        dm.prepare_data()
        got = splits(dm)
        for split, tensors in reference.items():
            assert all(torch.equal(a, b) for a, b in zip(tensors, got[split], strict=True))


def test_the_decompressed_content_is_what_is_verified(
    data_root: Path, tmp_path: Path, monkeypatch
) -> None:
    published_as_fixture(data_root, monkeypatch)
    raw = gz_only(data_root, tmp_path, "FashionMNIST", 1, 7)
    archive = raw / "t10k-images-idx3-ubyte.gz"
    data = bytearray(gzip.decompress(archive.read_bytes()))
    data[-1] ^= 0xFF  # one pixel changed: same header and size, other content
    archive.write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(DatasetError) as error:
        FashionMNISTDataModule(str(tmp_path), download=False, val_size=20).setup()
    assert (
        f"{archive} is corrupt: its decompressed content's md5 differs from the published FashionMNIST's"
        in str(error.value)
    )
    FashionMNISTDataModule(str(tmp_path), download=False, val_size=20, verify=False).setup()


def test_a_truncated_archive_is_named(data_root: Path, tmp_path: Path) -> None:
    raw = gz_only(data_root, tmp_path, "MNIST", 6, 0)
    archive = raw / "train-labels-idx1-ubyte.gz"
    archive.write_bytes(archive.read_bytes()[:-20])
    with pytest.raises(DatasetError, match=f"{archive} is not a readable gzip archive"):
        MNISTDataModule(str(tmp_path), download=False, val_size=20).setup()


def test_an_extracted_file_wins_over_its_archive(data_root: Path, tmp_path: Path) -> None:
    shutil.copytree(data_root / "MNIST", tmp_path / "MNIST")
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").write_bytes(b"another archive")
    MNISTDataModule(str(tmp_path), download=False, val_size=20).setup()  # the archive is not read
