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


# Text: small corpora in the published formats. Words are drawn so that a model can learn them:
# sentences follow a fixed pattern, and each class has its own words.
CLASS_WORDS = [["awful", "dull", "poor"], ["great", "superb", "fine"], ["goal", "match", "team"],
               ["stock", "market", "bank"]]  # fmt: skip
FILLER = ["the", "film", "a", "story", "it", "was", "and", "this", "of", "plot"]


def _sentence(rng: np.random.Generator, label: int, words: int = 8) -> str:
    tokens = [str(rng.choice(FILLER)) for _ in range(words)]
    for i in rng.choice(words, size=2, replace=False):
        tokens[i] = str(rng.choice(CLASS_WORDS[label]))
    return " ".join(tokens)


def write_tinyshakespeare(root: Path, lines: int = 300, seed: int = 0) -> Path:
    """ROOT/tinyshakespeare/input.txt: speakers and their lines, as the published file has them."""
    rng = np.random.default_rng(seed)
    speakers = ["ROMEO", "JULIET", "First Citizen"]
    verses = ["What light through yonder window breaks?", "Speak, speak.", "We know't, we know't."]
    text = "".join(f"{rng.choice(speakers)}:\n{rng.choice(verses)}\n\n" for _ in range(lines))
    (root / "tinyshakespeare").mkdir(parents=True, exist_ok=True)
    (root / "tinyshakespeare" / "input.txt").write_text(text, encoding="utf-8")
    return root


def _ptb_lines(rng: np.random.Generator, n: int) -> str:
    """PTB's layout: one sentence a line, a leading space, lower case, numbers as N, <unk>."""
    subjects, verbs = ["the company", "the bank", "mr. <unk>", "it"], ["said", "rose N %", "fell"]
    return "".join(f" {rng.choice(subjects)} {rng.choice(verbs)} \n" for _ in range(n))


def write_ptb(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "ptb").mkdir(parents=True, exist_ok=True)
    for name, n in (("train", 200), ("valid", 40), ("test", 40)):
        (root / "ptb" / f"ptb.{name}.txt").write_text(_ptb_lines(rng, n), encoding="utf-8")
    return root


def write_wikitext2(root: Path, seed: int = 0) -> Path:
    """ROOT/wikitext2/wikitext-2-v1.zip holding wikitext-2/wiki.{train,valid,test}.tokens."""
    import zipfile

    rng = np.random.default_rng(seed)
    (root / "wikitext2").mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(root / "wikitext2" / "wikitext-2-v1.zip", "w") as z:
        for name, n in (("train", 60), ("valid", 12), ("test", 12)):
            body = "".join(
                f" = Article {i} = \n \n {_sentence(rng, 0)} @-@ {_sentence(rng, 1)} . \n \n"
                for i in range(n)
            )
            z.writestr(f"wikitext-2/wiki.{name}.tokens", body)
    return root


def write_sst2(root: Path, seed: int = 0) -> Path:
    """ROOT/sst2/stsa.binary.{train,dev,test}: `LABEL SENTENCE` a line, tokens split by spaces."""
    rng = np.random.default_rng(seed)
    (root / "sst2").mkdir(parents=True, exist_ok=True)
    for name, n in (("train", 64), ("dev", 16), ("test", 16)):
        labels = rng.integers(0, 2, size=n)
        lines = [f"{y} {_sentence(rng, int(y))}\n" for y in labels]
        (root / "sst2" / f"stsa.binary.{name}").write_text("".join(lines), encoding="utf-8")
    return root


def write_imdb(root: Path, per_class: int = 12, seed: int = 0) -> Path:
    """ROOT/imdb/aclImdb_v1.tar.gz with aclImdb/{train,test}/{neg,pos}/ID_RATING.txt reviews,
    and, as in the published archive, files that are not labelled reviews (unsup/, imdb.vocab)."""
    import io
    import tarfile

    rng = np.random.default_rng(seed)
    (root / "imdb").mkdir(parents=True, exist_ok=True)

    def add(tar: tarfile.TarFile, name: str, text: str) -> None:
        data = text.encode("utf-8")
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(root / "imdb" / "aclImdb_v1.tar.gz", "w:gz") as tar:
        add(tar, "aclImdb/imdb.vocab", "the\nfilm\n")
        add(tar, "aclImdb/train/unsup/0_0.txt", "Not labelled.")
        for split in ("train", "test"):
            for label, folder in enumerate(("neg", "pos")):
                for i in range(per_class):
                    text = (
                        _sentence(rng, label).capitalize()
                        + ".<br /><br />"
                        + _sentence(rng, label)
                        + "!"
                    )
                    add(tar, f"aclImdb/{split}/{folder}/{i}_{3 + 5 * label}.txt", text)
    return root


def write_ag_news(root: Path, seed: int = 0) -> Path:
    """ROOT/ag_news/{train,test}.csv: "CLASS","TITLE","DESCRIPTION" rows, classes 1-4."""
    import csv

    rng = np.random.default_rng(seed)
    (root / "ag_news").mkdir(parents=True, exist_ok=True)
    for name, n in (("train", 64), ("test", 16)):
        with open(root / "ag_news" / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, quoting=csv.QUOTE_ALL)
            for y in rng.integers(0, 4, size=n):
                writer.writerow(
                    [
                        int(y) + 1,
                        _sentence(rng, int(y), 4).title(),
                        _sentence(rng, int(y)) + " \\$5",
                    ]
                )
    return root


def write_text_datasets(root: Path) -> Path:
    for write in (write_tinyshakespeare, write_ptb, write_wikitext2, write_sst2, write_imdb,
                  write_ag_news):  # fmt: skip
        write(root)
    return root
