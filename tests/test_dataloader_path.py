"""data.loader=dataloader (a torch DataLoader over PIL images with torchvision's transforms) gives
the same batches as the device-resident tensor path: equal evaluation batches, the same samples
in a training epoch, and augmentation drawn from the same distribution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import chi2_contingency, chisquare

from datamodules.cifar10 import CIFAR10DataModule
from harness.config.checks import check_config
from harness.errors import ConfigError
from harness.run.recipe import train
from tests.conftest import FAST, compose, fixture_overrides


def cifar(data_root: Path, loader: str, augment: bool = False) -> CIFAR10DataModule:
    dm = CIFAR10DataModule(str(data_root), batch_size=8, download=False, val_size=20, verify=False,
                           augment=augment, loader=loader, num_workers=0)  # fmt: skip
    dm.setup()
    return dm


def test_evaluation_batches_are_equal(data_root: Path) -> None:
    tensor, loader = cifar(data_root, "tensor"), cifar(data_root, "dataloader")
    a, b = list(tensor.val_dataloader()), list(loader.val_dataloader())
    assert len(a) == len(b) == 3  # 20 images in batches of 8
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert xb.dtype == xa.dtype == torch.float32 and xb.shape == xa.shape
        torch.testing.assert_close(xb, xa)
        assert yb.tolist() == ya.tolist()


def pixels(x: torch.Tensor, dm: CIFAR10DataModule) -> torch.Tensor:
    """Normalised floats (N, C, H, W) back to the uint8 pixels they came from."""
    mean = torch.tensor(dm.mean).view(-1, 1, 1)
    std = torch.tensor(dm.std).view(-1, 1, 1)
    return ((x * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)


def test_a_training_epoch_holds_the_same_samples(data_root: Path) -> None:
    def epoch(dm: CIFAR10DataModule) -> list[bytes]:
        batches = list(dm.train_dataloader())
        assert [len(y) for _, y in batches] == [8] * 10  # 80 images, last partial batch dropped
        return sorted(x.numpy().tobytes() for xb, _ in batches for x in pixels(xb, dm))

    assert epoch(cifar(data_root, "tensor")) == epoch(cifar(data_root, "dataloader"))


def augmentation_counts(outputs: torch.Tensor, image: torch.Tensor, dm: CIFAR10DataModule):
    """How often each of the 9 x 9 crop offsets x {kept, mirrored} produced the outputs (N, C, H, W)
    (normalised floats) from image (C, H, W) uint8."""
    p = dm.crop_padding
    padded = torch.nn.functional.pad(image, (p,) * 4)
    size = image.shape[-1]
    candidates = {}
    for dy in range(2 * p + 1):
        for dx in range(2 * p + 1):
            crop = padded[:, dy : dy + size, dx : dx + size]
            candidates[crop.numpy().tobytes()] = len(candidates)
            candidates[crop.flip(-1).numpy().tobytes()] = len(candidates)
    counts = np.zeros(len(candidates), dtype=np.int64)
    for x in pixels(outputs, dm):
        counts[candidates[x.numpy().tobytes()]] += 1  # KeyError: not a crop-and-flip of the image
    return counts


@pytest.mark.slow
def test_augmentation_has_the_same_distribution(data_root: Path) -> None:
    dm = cifar(data_root, "tensor", augment=True)
    n = 3240  # 20 draws per (offset, flip) cell on average
    image = torch.randint(0, 256, (3, 32, 32), generator=torch.Generator().manual_seed(0))
    image = image.to(torch.uint8)
    batch = (image.expand(n, -1, -1, -1), torch.zeros(n, dtype=torch.long))
    tensor_out, _ = dm.train_transform(batch, torch.Generator().manual_seed(1))
    pil = Image.fromarray(image.permute(1, 2, 0).numpy())
    transform = dm.pil_transform(train=True)
    torch.manual_seed(2)  # torchvision draws from torch's global generator
    pil_out = torch.stack([transform(pil) for _ in range(n)])

    a = augmentation_counts(tensor_out, image, dm)
    b = augmentation_counts(pil_out, image, dm)
    assert a.sum() == b.sum() == n
    assert chisquare(a).pvalue > 1e-3 and chisquare(b).pvalue > 1e-3  # uniform over 162 cells
    assert chi2_contingency(np.stack([a, b])).pvalue > 1e-3  # and the same distribution


@pytest.mark.slow
def test_training_runs_on_the_dataloader_path(data_root: Path, tmp_path: Path) -> None:
    results = train(compose([*FAST, *fixture_overrides("cifar10", data_root), "model=cnn",
                             "data.loader=dataloader", "data.num_workers=1"]), tmp_path)  # fmt: skip
    assert results["status"] == "finished" and results["steps"] == 4


def test_unknown_loader_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r"data\.loader must be one of tensor, dataloader, got 'x'"
    ):
        check_config(compose(["data=digits", "data.loader=x"]))
