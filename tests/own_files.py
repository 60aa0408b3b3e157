"""Fixture files as people keep their own data: labelled texts in each format the text_files
option reads (Kim lines, CSV, TSV, JSONL), plain-text corpora, and folders of PNG images by
class. Made by the tests; nothing is downloaded."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from tests.fixtures import _sentence

NAMES = ["neg", "pos", "sport"]  # string labels; sorted, they are the classes in this order
SIZES = {"train": 60, "val": 15, "test": 15}


def labelled_examples(split: str, seed: int = 0) -> list[tuple[str, str]]:
    """(label name, sentence) pairs whose words tell the class."""
    rng = np.random.default_rng([seed, list(SIZES).index(split)])
    # The order of first sight ("sport", "pos", "neg") differs from the sorted order on purpose.
    labels = [2, 1, 0] + [int(y) for y in rng.integers(0, 3, size=SIZES[split] - 3)]
    return [(NAMES[y], _sentence(rng, y)) for y in labels]


def write_labelled(path: Path, examples: list[tuple[str, str]], format: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "lines":
        path.write_text("".join(f"{y} {t}\n" for y, t in examples), encoding="utf-8")
    elif format == "jsonl":
        rows = [json.dumps({"id": i, "text": t, "label": y}) for i, (y, t) in enumerate(examples)]
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    else:  # csv, tsv: extra columns, the label column not first
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter="\t" if format == "tsv" else ",")
            writer.writerow(["id", "text", "label"])
            writer.writerows([i, t, y] for i, (y, t) in enumerate(examples))
    return path


SUFFIX = {"lines": ".txt", "csv": ".csv", "tsv": ".tsv", "jsonl": ".jsonl"}


def write_labelled_splits(
    folder: Path, format: str, splits=("train", "val", "test")
) -> dict[str, Path]:
    return {
        s: write_labelled(folder / f"{s}{SUFFIX[format]}", labelled_examples(s), format)
        for s in splits
    }


def write_corpus(folder: Path, splits=("train", "val", "test"), seed: int = 0) -> dict[str, Path]:
    """Plain UTF-8 text files, a sentence a line (with a non-ASCII character)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in zip(splits, (200, 40, 40), strict=False):
        text = "".join(f"{_sentence(rng, int(rng.integers(0, 2)))} café.\n" for _ in range(n))
        out[split] = folder / f"{split}.txt"
        out[split].write_text(text, encoding="utf-8")
    return out


def write_image_folder(
    root: Path,
    sizes=(12, 12),
    per_class: int = 8,
    splits=("train", "val", "test"),
    mode: str = "L",
    seed: int = 0,
) -> Path:
    """ROOT/{split}/{class}/{i}.png, torchvision's ImageFolder layout: three classes (circle,
    cross, square; each its own brightness), images of sizes[0] x sizes[0], every second one
    sizes[1] x sizes[1]; grey (mode "L") or RGB."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split in splits:
        for c, name in enumerate(("circle", "cross", "square")):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                size = sizes[i % 2]
                shape = (size, size) if mode == "L" else (size, size, 3)
                pixels = np.clip(40 + 80 * c + rng.normal(0, 20, size=shape), 0, 255)
                Image.fromarray(pixels.astype(np.uint8)).save(root / split / name / f"{i}.png")
    return root
