"""The datamodules read the real on-disk formats; the tensor loader's batches are seeded, sharded
and resumable; the batch-wise augmentation equals torchvision's per-image transforms."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from datamodules import DatasetError
from datamodules.augment import random_crop, random_flip
from datamodules.cifar10 import CIFAR10DataModule
from datamodules.digits import DigitsDataModule
from datamodules.image import split_off
from datamodules.mnist import IDX_FILES, FashionMNISTDataModule, MNISTDataModule
from datamodules.tensor_loader import TensorLoader


def test_cifar10_reads_the_pickle_batches_in_order(data_root: Path) -> None:
    dm = CIFAR10DataModule(str(data_root), batch_size=8, download=False, val_size=20, verify=False)
    dm.setup()
    with open(data_root / "cifar-10-batches-py" / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="latin1")
    test_x, test_y = dm.splits["test"]
    assert test_x.shape == (20, 3, 32, 32) and test_x.dtype == torch.uint8
    # row layout: 1024 red, then 1024 green, then 1024 blue bytes
    assert torch.equal(test_x[3, 1].flatten(), torch.from_numpy(raw["data"][3, 1024:2048]))
    assert test_y.tolist() == raw["labels"]
    assert len(dm.splits["train"][1]) == 80 and len(dm.splits["val"][1]) == 20
    assert dm.dims == {
        "in_channels": 3,
        "image_size": 32,
        "num_classes": 10,
        "class_names": list(dm.class_names),
    }


def test_cifar10_checksums_catch_a_corrupt_file(data_root: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(data_root / "cifar-10-batches-py", root / "cifar-10-batches-py")
    with pytest.raises(DatasetError, match="corrupt"):
        CIFAR10DataModule(
            str(root), download=False, verify=True
        ).setup()  # fixtures differ from the md5s


class _RunsCode:
    """A pickle that runs a command when loaded."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        import os

        return os.system, (self.command,)


def test_a_cifar10_batch_that_would_run_code_is_refused(data_root: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "copy" / "cifar-10-batches-py"
    shutil.copytree(data_root / "cifar-10-batches-py", folder)
    marker = tmp_path / "ran"
    entry = {"data": _RunsCode(f"touch {marker}"), "labels": [0]}
    (folder / "data_batch_2").write_bytes(pickle.dumps(entry, protocol=2))
    dm = CIFAR10DataModule(str(folder.parent), download=False, val_size=20, verify=False)
    with pytest.raises(DatasetError) as error:
        dm.setup()
    message = str(error.value)
    assert "\n" not in message and str(folder / "data_batch_2") in message
    assert "system" in message  # what it asked for
    assert not marker.exists()  # and nothing ran


def test_cifar10_batches_pickled_by_numpy_2_load(data_root: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "copy" / "cifar-10-batches-py"
    shutil.copytree(data_root / "cifar-10-batches-py", folder)
    for path in folder.iterdir():  # numpy 2 names its array module numpy._core
        path.write_bytes(
            path.read_bytes().replace(b"numpy.core.multiarray", b"numpy._core.multiarray")
        )
    dm = CIFAR10DataModule(str(folder.parent), download=False, val_size=20, verify=False)
    dm.setup()
    assert dm.splits["test"][0].shape == (20, 3, 32, 32)


def test_missing_data_with_downloads_off_says_where_and_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"not found.*data.download=false.*data.root"):
        CIFAR10DataModule(str(tmp_path), download=False).setup()
    with pytest.raises(DatasetError, match=r"MNIST not found.*data.root"):
        MNISTDataModule(str(tmp_path), download=False).setup()


@pytest.mark.parametrize("cls", [MNISTDataModule, FashionMNISTDataModule])
def test_mnist_idx_files(cls, data_root: Path) -> None:
    dm = cls(str(data_root), batch_size=8, download=False, val_size=20)
    dm.setup()
    x, y = dm.splits["train"]
    assert x.shape == (100, 1, 28, 28) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert dm.dims["in_channels"] == 1 and dm.dims["image_size"] == 28


def test_validation_split_is_seeded_and_disjoint() -> None:
    a, b = DigitsDataModule(split_seed=0), DigitsDataModule(split_seed=0)
    a.setup(), b.setup()
    assert torch.equal(a.splits["val"][0], b.splits["val"][0])
    sizes = {k: len(v[1]) for k, v in a.splits.items()}
    assert sum(sizes.values()) == 1797 and sizes["test"] == 359
    ids = torch.arange(50)
    (rest, _), (held, _) = split_off(ids, ids, 10, seed=7)
    assert len(held) == 10 and not set(rest.tolist()) & set(held.tolist())
    assert sorted(rest.tolist() + held.tolist()) == list(range(50))


def test_batch_crop_and_flip_match_torchvision() -> None:
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    out = random_crop(x, 4, g)
    # Recover each image's offset by matching against torchvision's crop of the padded image.
    padded = TF.pad(x, [4, 4, 4, 4])
    for i in range(16):
        matches = [
            (dy, dx) for dy in range(9) for dx in range(9)
            if torch.equal(TF.crop(padded[i], dy, dx, 32, 32), out[i])
        ]  # fmt: skip
        assert matches, f"image {i} is not a crop of its padded self"
    flipped = random_flip(x, torch.Generator().manual_seed(1))
    same = [torch.equal(flipped[i], x[i]) for i in range(16)]
    mirrored = [torch.equal(flipped[i], TF.horizontal_flip(x[i])) for i in range(16)]
    assert all(s or m for s, m in zip(same, mirrored, strict=True)) and 0 < sum(mirrored) < 16


def batches(loader: TensorLoader, epoch: int) -> list[torch.Tensor]:
    loader.sampler.set_epoch(epoch)
    return [b[0] for b in loader]


def test_loader_order_is_a_function_of_seed_and_epoch() -> None:
    data = (torch.arange(100),)
    make = lambda seed: TensorLoader(data, 10, shuffle=True, seed=seed)  # noqa: E731
    assert [b.tolist() for b in batches(make(0), 0)] == [b.tolist() for b in batches(make(0), 0)]
    assert torch.cat(batches(make(0), 0)).tolist() != torch.cat(batches(make(0), 1)).tolist()
    assert torch.cat(batches(make(0), 0)).tolist() != torch.cat(batches(make(1), 0)).tolist()
    assert sorted(torch.cat(batches(make(0), 3)).tolist()) == list(range(100))


def test_loader_ranks_share_one_permutation_and_split_it() -> None:
    data = (torch.arange(101),)
    ranks = [TensorLoader(data, 10, shuffle=True, seed=5, rank=r, world_size=2) for r in range(2)]
    seen = [torch.cat(batches(loader, 2)).tolist() for loader in ranks]
    assert len(seen[0]) == len(seen[1]) == 50
    assert not set(seen[0]) & set(seen[1])


def test_loader_resumes_mid_epoch_with_the_same_batches() -> None:
    data = (torch.arange(64),)
    crop = lambda b, g: (b[0] + torch.randint(0, 1000, (len(b[0]),), generator=g),)  # noqa: E731
    full = TensorLoader(data, 8, shuffle=True, seed=2, transform=crop)
    expected = batches(full, 1)
    resumed = TensorLoader(data, 8, shuffle=True, seed=2, transform=crop)
    resumed.load_state_dict({"epoch": 1, "next_batch": 3})
    assert [b[0].tolist() for b in resumed] == [b.tolist() for b in expected[3:]]


def test_digits_pixels_span_uint8() -> None:
    dm = DigitsDataModule()
    dm.setup()
    x = dm.splits["train"][0]
    assert x.dtype == torch.uint8 and int(x.max()) == 255 and int(x.min()) == 0
    assert np.isclose(x.float().div(255).mean().item(), DigitsDataModule.mean[0], atol=0.01)


def test_a_failed_download_is_reported_in_one_line() -> None:
    from datamodules.downloads import reason

    # torchvision's MNIST error: one line per mirror tried, the cause last, then a lone "."
    error = RuntimeError(
        "Error downloading x.gz:\nTried https://a/, got:\n<urlopen error timed out>\n."
    )
    assert reason(error) == "<urlopen error timed out>"
    assert reason(OSError()) == "OSError"


def test_a_failed_image_download_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchvision.datasets import CIFAR10, MNIST

    closed = "http://127.0.0.1:9"  # port 9 (discard): connection refused at once, no network
    monkeypatch.setattr(MNIST, "mirrors", [f"{closed}/"])
    monkeypatch.setattr(CIFAR10, "url", f"{closed}/cifar-10-python.tar.gz")
    for cls in (MNISTDataModule, CIFAR10DataModule):
        with pytest.raises(DatasetError, match="could not download"):
            cls(str(tmp_path / "data"), download=True).prepare_data()
        assert not (tmp_path / "data").exists(), cls  # no folder, no lock file


@pytest.mark.parametrize("cls", [MNISTDataModule, CIFAR10DataModule])
def test_image_data_holding_every_file_takes_no_download_lock(
    cls, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datamodules.cifar10
    import datamodules.mnist

    def no_lock(*args):  # a shared, read-only data folder: no lock file can be made there
        raise AssertionError("took the download lock with every file present")

    for module in (datamodules.cifar10, datamodules.mnist):
        monkeypatch.setattr(module, "download_lock", no_lock)
    cls(str(data_root), download=True, verify=False).prepare_data()


def test_an_mnist_file_cut_short_by_a_kill_mid_extraction_is_extracted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gzip
    import hashlib

    from tests.fixtures import write_mnist

    raw = write_mnist(tmp_path / "data") / "MNIST" / "raw"
    resources = []
    for name in IDX_FILES:
        archive = gzip.compress((raw / name).read_bytes())
        (raw / f"{name}.gz").write_bytes(archive)  # kept beside the idx files after a download
        resources.append((f"{name}.gz", hashlib.md5(archive).hexdigest()))
    monkeypatch.setattr(MNISTDataModule.dataset_class, "resources", resources)
    monkeypatch.setattr(MNISTDataModule.dataset_class, "mirrors", ["http://127.0.0.1:9/"])
    whole = (raw / "train-images-idx3-ubyte").read_bytes()
    (raw / "train-images-idx3-ubyte").write_bytes(whole[:1000])  # the kill came mid-write
    dm = MNISTDataModule(str(tmp_path / "data"), download=True, val_size=20)
    dm.prepare_data()
    assert (raw / "train-images-idx3-ubyte").read_bytes() == whole
    dm.setup()


def test_a_cifar10_extraction_killed_midway_is_done_again(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib
    import tarfile

    from torchvision.datasets import CIFAR10, utils

    root = tmp_path / "data"
    root.mkdir()
    archive = root / CIFAR10.filename  # the published archive, as a finished download keeps it
    with tarfile.open(archive, "w:gz") as tar:
        for name in ["batches.meta", *(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
            tar.add(data_root / "cifar-10-batches-py" / name, f"cifar-10-batches-py/{name}")
    monkeypatch.setattr(CIFAR10, "tgz_md5", hashlib.md5(archive.read_bytes()).hexdigest())
    monkeypatch.setattr(CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    real_extract = utils.extract_archive

    def killed(from_path, to_path=None, *args, **kwargs):
        """Extracts all but half of the last file, then the process dies."""
        real_extract(from_path, to_path, *args, **kwargs)
        last = Path(to_path or Path(from_path).parent) / "cifar-10-batches-py" / "test_batch"
        last.write_bytes(last.read_bytes()[:1000])
        raise KeyboardInterrupt  # not an Exception: no handler of ours runs, as for SIGKILL

    monkeypatch.setattr(utils, "extract_archive", killed)
    dm = CIFAR10DataModule(str(root), download=True, val_size=20, verify=False)
    with pytest.raises(KeyboardInterrupt):
        dm.prepare_data()
    monkeypatch.setattr(utils, "extract_archive", real_extract)
    dm.prepare_data()  # the next run
    dm.setup()
    assert dm.splits["test"][0].shape == (20, 3, 32, 32)
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py", CIFAR10.filename]
