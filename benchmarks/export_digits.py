"""scikit-learn's 8x8 digits written out as PNG files in torchvision's ImageFolder layout,
OUT/{train,val,test}/{0..9}/NNNN.png, with data=digits's own seeded split (so data=image_folder on
OUT trains, validates and tests on the very images data=digits does). PNG is lossless: the uint8
pixels read back exactly.

    python -m benchmarks.export_digits OUT
    python train.py experiment=cpu_digits data=image_folder data.root=OUT data.batch_size=16
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from datamodules.digits import DigitsDataModule


def export(out: Path) -> dict[str, int]:
    dm = DigitsDataModule()  # the split of conf/data/digits.yaml (20% test, 10% of the rest val)
    dm.setup()
    counts = {}
    for split, (images, labels) in dm.splits.items():
        for i, (image, label) in enumerate(zip(images, labels.tolist(), strict=True)):
            folder = out / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image[0].numpy()).save(folder / f"{i:04d}.png")  # (8, 8) grey
        counts[split] = len(labels)
    return counts


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    print(export(parser.parse_args().out))
