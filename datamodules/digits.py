"""scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes, UCI "optdigits" test
set): no download, so it is the offline quick start. Pixel values 0..16 become uint8 0..255."""

from __future__ import annotations

import torch

from datamodules.image import ImageDataModule, Splits, check_fraction, split_off


class DigitsDataModule(ImageDataModule):
    mean = (0.3053,)  # over all 1,797 images, after scaling to [0, 1]
    std = (0.3759,)
    class_names = tuple(str(d) for d in range(10))

    def __init__(
        self,
        batch_size: int = 64,
        *,
        test_fraction: float = 0.2,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        augment: bool = False,
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
        check_fraction("data.test_fraction", test_fraction, allow_zero=False)
        check_fraction("data.val_fraction", val_fraction, allow_zero=False)
        self.test_fraction, self.val_fraction, self.split_seed = (
            test_fraction,
            val_fraction,
            split_seed,
        )

    def load_splits(self) -> Splits:
        from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

        digits = load_digits()
        images = torch.from_numpy(digits.images * (255 / 16)).round().to(torch.uint8).unsqueeze(1)
        labels = torch.from_numpy(digits.target).long()
        rest, test = split_off(
            images, labels, round(self.test_fraction * len(labels)), self.split_seed
        )
        train, val = split_off(*rest, round(self.val_fraction * len(rest[1])), self.split_seed + 1)
        return {"train": train, "val": val, "test": test}
