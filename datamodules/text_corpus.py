"""data=text_corpus: language modelling on your own plain-text files, data.train and optionally
data.val and data.test; without data.val the training file is split as Tiny Shakespeare is (the
first 1 - data.val_fraction of its tokens train, the rest validate). data.level=char models a
character at a time; data.level=word a whitespace-separated word at a time, every line ending
with <eos> (as PTB and WikiText). Tensors cached by the files' content; the vocabulary (from the
training part only) travels in every checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datamodules.corpus import CorpusDataModule, words_and_eos
from datamodules.files import built_once, check_encoding, read_text
from datamodules.image import check_fraction
from datamodules.vocab import characters

LEVELS = {"char": characters, "word": words_and_eos}


class TextCorpus(CorpusDataModule):
    name = "data.train"
    folder = ""
    files = ()

    def __init__(
        self,
        train: str | None,
        val: str | None = None,
        test: str | None = None,
        batch_size: int = 64,
        *,
        level: str = "char",
        block_size: int = 256,
        val_fraction: float = 0.1,
        encoding: str = "utf-8",
        cache_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        if not train:
            raise ValueError(
                "data=text_corpus needs a training file: data.train=PATH (and optionally "
                "data.val=PATH, data.test=PATH)"
            )
        super().__init__(
            str(Path(train).parent), batch_size, block_size=block_size, download=False,
            verify=False, cache_dir=cache_dir, seed=seed,
        )  # fmt: skip
        if level not in LEVELS:
            raise ValueError(f"data.level must be one of {', '.join(LEVELS)}, got {level!r}")
        check_fraction("data.val_fraction", val_fraction, allow_zero=False)
        check_encoding(encoding)
        self.paths = {"train": train, "val": val, "test": test}
        self.level, self.val_fraction, self.encoding = level, val_fraction, encoding
        self.char_level = level == "char"  # bits per character are logged
        self.has_test_split = test is not None

    def settings(self) -> dict[str, Any]:
        return {"level": self.level, "val_fraction": self.val_fraction, "encoding": self.encoding}

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        data = built_once(
            self.paths, self.cache_dir, type(self).__name__, self.settings(), self.build
        )
        self._adopt(data["vocab"])
        self.splits = {name: tuple(tensors) for name, tensors in data["splits"].items()}

    def read(self) -> dict[str, list[str]]:
        tokenize = LEVELS[self.level]
        splits = {
            split: tokenize(read_text(Path(path).expanduser(), self.encoding))
            for split, path in self.paths.items()
            if path is not None
        }
        if "val" not in splits:
            tokens = splits["train"]
            cut = int(len(tokens) * (1 - self.val_fraction))  # nanoGPT: data[:int(n*0.9)]
            splits["train"], splits["val"] = tokens[:cut], tokens[cut:]
        return splits
