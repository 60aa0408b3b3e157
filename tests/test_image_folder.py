"""data=image_folder reads torchvision's ImageFolder layout into uint8 tensors: classes sorted,
grey or RGB, resized to data.size (or the images' own size when they agree), normalised with the
training images' statistics, validation held out when there is no val/ folder; bad folders and
images are one error naming the path; a dataset too big for memory is refused before decoding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datamodules import DatasetError
from datamodules.image_folder import ImageFolderData
from tests.own_files import write_image_folder

CLASSES = ("circle", "cross", "square")


def folder_data(root: Path, **kwargs) -> ImageFolderData:
    dm = ImageFolderData(str(root), batch_size=4, **kwargs)
    dm.setup()
    return dm


def test_grey_images_of_one_size(tmp_path: Path) -> None:
    dm = folder_data(write_image_folder(tmp_path, sizes=(12, 12)))
    x, y = dm.splits["train"]
    assert (
        x.dtype == torch.uint8
        and x.shape == (24, 1, 12, 12)
        and y.tolist() == [0] * 8 + [1] * 8 + [2] * 8
    )
    assert dm.class_names == CLASSES and dm.dims == {
        "in_channels": 1, "image_size": 12, "num_classes": 3, "class_names": list(CLASSES),
    }  # fmt: skip
    assert dm.mean[0] == pytest.approx(float((x.float() / 255).mean()), abs=1e-6)
    assert dm.crop_padding == 2  # 12 / 8, as 4 of CIFAR-10's 32
    batch, _ = next(iter(dm.train_dataloader()))
    assert batch.dtype == torch.float32 and batch.shape == (4, 1, 12, 12)


def test_mixed_sizes_are_resized_to_data_size_and_rgb_kept(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path, sizes=(10, 16), mode="RGB")
    dm = folder_data(root, size=8, augment=True)
    assert dm.splits["test"][0].shape == (24, 3, 8, 8) and len(dm.mean) == 3
    (batch, _), again = next(iter(dm.train_dataloader())), next(iter(dm.train_dataloader()))
    assert torch.equal(batch, again[0])  # augmentation seeded


def test_without_val_folder_a_stratified_share_of_train_validates(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path, splits=("train", "test"))
    dm = folder_data(root, val_size=6)
    assert dm.splits["val"][1].bincount().tolist() == [2, 2, 2]
    assert len(dm.splits["train"][1]) == 18
    train, val = dm.splits["train"][0].flatten(1), dm.splits["val"][0].flatten(1)
    assert not any(torch.equal(v, t) for v in val for t in train)  # disjoint


def test_the_state_carries_what_evaluation_needs(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path)
    dm = folder_data(root)
    state = dm.state_dict()
    assert state == {"class_names": list(CLASSES), "channels": 1, "size": 12,
                     "mean": list(dm.mean), "std": list(dm.std)}  # fmt: skip
    other = write_image_folder(tmp_path / "other", sizes=(20, 20), seed=3)
    restored = ImageFolderData(str(other), batch_size=4)
    restored.load_state_dict(state)  # a checkpoint read before the data, as an evaluation does
    restored.setup()
    assert restored.splits["test"][0].shape[-1] == 12 and restored.mean == dm.mean


def bad_folder(tmp_path: Path, case: str) -> tuple[Path, dict, str]:
    root = write_image_folder(tmp_path, sizes=(12, 12))
    if case == "unreadable":
        bad = root / "test" / "cross" / "9.png"
        bad.write_bytes(b"not a png")
        return root, {}, f"{bad}: not a readable image"
    if case == "truncated":
        bad = root / "train" / "circle" / "3.png"
        bad.write_bytes(bad.read_bytes()[:60])
        return root, {}, f"{bad}: not a readable image"
    if case == "mixed sizes":
        mixed = write_image_folder(tmp_path / "mixed", sizes=(12, 14))
        return mixed, {}, (f"images differ in size ({mixed / 'train/circle/0.png'} is 12x12, "
                           f"{mixed / 'train/circle/1.png'} is 14x14): set data.size=N")  # fmt: skip
    if case == "unknown class":
        (root / "test" / "star").mkdir()
        return root, {}, f"{root / 'test' / 'star'}: class 'star' has no folder in {root / 'train'}"
    if case == "no test":
        import shutil

        shutil.rmtree(root / "test")
        return root, {}, f"data.root={root}: no test/ folder"
    if case == "empty class":
        (root / "train" / "star").mkdir()
        return root, {}, f"{root / 'train' / 'star'}: no image files"
    if case == "not square":
        from PIL import Image

        flat = tmp_path / "flat"
        for split in ("train", "test"):
            for name in ("a", "b"):
                (flat / split / name).mkdir(parents=True)
                Image.new("L", (12, 8)).save(flat / split / name / "0.png")
        return flat, {}, "the images are 12x8, not square: set data.size=N"
    if case == "too big":
        return (
            root,
            {"size": 100_000},
            f"{root}: 72 images of 1x100000x100000 take 670.6 GiB as uint8, more than half",
        )
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["unreadable", "truncated", "mixed sizes", "unknown class",
                                  "no test", "empty class", "not square", "too big"])  # fmt: skip
def test_a_bad_folder_is_one_error_naming_the_path(case: str, tmp_path: Path, monkeypatch) -> None:
    root, kwargs, message = bad_folder(tmp_path, case)
    decoded = []
    monkeypatch.setattr(
        "datamodules.image_folder.decode", lambda *a: decoded.append(a) or pytest.fail("decoded")
    )
    if case == "truncated":  # a good header: found only when decoded
        monkeypatch.undo()
    with pytest.raises(DatasetError) as error:
        folder_data(root, **kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_dataloader_path_gives_the_tensor_paths_batches(tmp_path: Path) -> None:
    dm = folder_data(write_image_folder(tmp_path), loader="dataloader", num_workers=0)
    x, y = next(iter(dm.test_dataloader()))  # PIL + torchvision transforms, one image at a time
    tensor = folder_data(tmp_path)
    tx, ty = next(iter(tensor.test_dataloader()))
    assert torch.allclose(x, tx, atol=1e-5) and torch.equal(y, ty)
