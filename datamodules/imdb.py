"""IMDB movie reviews (Maas et al., 2011): 25,000 training and 25,000 test reviews, half positive,
half negative. Read from the published archive as it is, ROOT/imdb/aclImdb_v1.tar.gz, members
aclImdb/{train,test}/{neg,pos}/ID_RATING.txt (one review each, raw text with <br /> breaks).
Validation: `val_size` reviews held out of the training split."""

from __future__ import annotations

import re
import tarfile

from datamodules import DatasetError
from datamodules.downloads import RemoteFile
from datamodules.text_classification import TextClassificationDataModule, Texts
from datamodules.vocab import basic_english

URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
MEMBER = re.compile(r"aclImdb/(train|test)/(neg|pos)/\d+_\d+\.txt")


class IMDB(TextClassificationDataModule):
    name = "IMDB"
    folder = "imdb"
    files = (RemoteFile("aclImdb_v1.tar.gz", URL, "7c2ac02c03563afcf9b574c7e56c153a"),)
    class_names = ("negative", "positive")
    tokenize = staticmethod(basic_english)

    def read(self) -> dict[str, Texts]:
        archive = self.path / "aclImdb_v1.tar.gz"
        reviews: dict[str, list[tuple[str, int, str]]] = {"train": [], "test": []}
        try:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar:  # streamed: nothing is extracted to disk
                    match = MEMBER.fullmatch(member.name)
                    if match and member.isfile():
                        split, label = match.groups()
                        text = tar.extractfile(member).read().decode("utf-8")
                        reviews[split].append((member.name, label == "pos", text))
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DatasetError(f"{archive} is not a readable IMDB archive ({e})") from e
        if not reviews["train"] or not reviews["test"]:
            raise DatasetError(f"{archive} holds no aclImdb/train or aclImdb/test reviews")
        return {
            split: ([text for *_, text in sorted(rows)], [int(pos) for _, pos, _ in sorted(rows)])
            for split, rows in reviews.items()
        }
