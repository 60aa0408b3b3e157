"""AG News (Zhang et al., 2015): news titles and descriptions in 4 classes, 120,000 training and
7,600 test examples, as the CSV files ROOT/ag_news/{train,test}.csv with rows
"CLASS","TITLE","DESCRIPTION" (class 1-4). Validation: `val_size` examples held out of the
training split."""

from __future__ import annotations

import csv

from datamodules import DatasetError
from datamodules.downloads import RemoteFile
from datamodules.text_classification import TextClassificationDataModule, Texts
from datamodules.vocab import basic_english

URL = "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/"


class AGNews(TextClassificationDataModule):
    name = "AG News"
    folder = "ag_news"
    files = (  # the copies torchtext's AG_NEWS downloads, with its md5s
        RemoteFile("train.csv", URL + "train.csv", "b1a00f826fdfbd249f79597b59e1dc12"),
        RemoteFile("test.csv", URL + "test.csv", "d52ea96a97a2d943681189a97654912d"),
    )
    class_names = ("World", "Sports", "Business", "Sci/Tech")
    tokenize = staticmethod(basic_english)

    def read(self) -> dict[str, Texts]:
        return {split: self._read(f"{split}.csv") for split in ("train", "test")}

    def _read(self, name: str) -> Texts:
        texts, labels = [], []
        with open(self.path / name, encoding="utf-8", newline="") as f:
            for n, row in enumerate(csv.reader(f), 1):
                if len(row) != 3 or row[0] not in ("1", "2", "3", "4"):
                    raise DatasetError(f"{self.path / name}:{n}: expected CLASS,TITLE,DESCRIPTION")
                # The descriptions escape line breaks and some characters with backslashes.
                texts.append(f"{row[1]} {row[2]}".replace("\\", " "))
                labels.append(int(row[0]) - 1)
        return texts, labels
