"""data=text_files: text classification on your own labelled files, data.train, data.test and
optionally data.val, each in one of the formats of labelled_files.py (told by its extension, or
data.format).

Classes are the labels of the training file, sorted (numerically when every label is an integer,
so 0, 1, 2, 10; else as strings): class i is the i-th name, whatever order the file lists them in.
Integer labels are compared as numbers ("01" is 1). A validation or test label the training file
lacks is an error. Without data.val, a seeded, class-stratified data.val_size examples (a count,
or a fraction of the training file) are held out of the training file.

Tokenised tensors are cached under data.cache_dir, keyed by the files' content and the settings;
the vocabulary and the class names travel in every checkpoint (state_dict). A datamodule given a
checkpoint's state before setup("test" / "validate" / "predict") encodes the files it is given with
them, without reading data.train: evaluation on other files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from datamodules import DatasetError
from datamodules.files import built_once, check_encoding, given, read_text
from datamodules.image import check_val_size, held_out_count, stratified_index
from datamodules.labelled_files import FORMATS, Record, file_format, read_records
from datamodules.text_classification import TextClassificationDataModule, Texts, padded
from datamodules.vocab import basic_english, whitespace

TOKENIZERS = {"whitespace": whitespace, "words": basic_english}
_INT = re.compile(r"[+-]?\d+")


def canonical(label: str) -> str:
    return str(int(label)) if _INT.fullmatch(label) else label


def class_order(labels: set[str]) -> list[str]:
    """Sorted: numerically when every label is an integer ("2" before "10"), else as strings."""
    if all(_INT.fullmatch(x) for x in labels):
        return sorted(labels, key=int)
    return sorted(labels)


class TextFiles(TextClassificationDataModule):
    name = "data.train"
    folder = ""
    files = ()

    def __init__(
        self,
        train: str | None,
        test: str | None,
        val: str | None = None,
        batch_size: int = 50,
        *,
        format: str | None = None,
        label_column: str = "label",
        text_column: str = "text",
        tokenizer: str = "whitespace",
        encoding: str = "utf-8",
        min_freq: int = 1,
        max_length: int | None = None,
        val_size: int | float = 0.1,
        split_seed: int = 0,
        cache_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        if not train or not test:
            raise ValueError(
                "data=text_files needs a training and a test file: data.train=PATH data.test=PATH "
                "(and optionally data.val=PATH)"
            )
        super().__init__(
            str(Path(train).parent), batch_size, min_freq=min_freq, max_length=max_length,
            split_seed=split_seed, download=False, verify=False, cache_dir=cache_dir, seed=seed,
        )  # fmt: skip
        if format is not None and format not in FORMATS:
            raise ValueError(
                f"data.format must be null (by extension) or one of {', '.join(FORMATS)}, got {format!r}"
            )
        if tokenizer not in TOKENIZERS:
            raise ValueError(
                f"data.tokenizer must be one of {', '.join(TOKENIZERS)}, got {tokenizer!r}"
            )
        check_encoding(encoding)
        check_val_size(val_size)
        self.paths = {"train": train, "val": val, "test": test}
        self.format, self.label_column, self.text_column = format, label_column, text_column
        self.tokenizer, self.encoding, self.val_size = tokenizer, encoding, val_size
        self.tokenize = TOKENIZERS[tokenizer]
        self.class_names: tuple[str, ...] = ()

    def settings(self) -> dict[str, Any]:
        keys = ("format", "label_column", "text_column", "tokenizer", "encoding")
        return {**super().settings(), **{k: getattr(self, k) for k in keys}}

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        held_out = stage == "validate" and self.paths["val"] is None  # cut from data.train
        if stage in ("validate", "test", "predict") and self.vocab is not None and self.class_names \
                and not held_out:  # fmt: skip
            self.splits = self._evaluation_splits()  # a checkpoint's state came first
            return
        data = built_once(
            self.paths, self.cache_dir, type(self).__name__, self.settings(), self.build
        )
        self._adopt(data["vocab"])
        self._adopt_classes(data["class_names"])
        self.splits = {name: tuple(tensors) for name, tensors in data["splits"].items()}

    def build(self) -> dict[str, Any]:
        data = super().build()  # reads the files (and finds the class names)
        return {**data, "class_names": self._read_classes}

    def read(self) -> dict[str, Texts]:
        paths = {s: Path(p).expanduser() for s, p in self.paths.items() if p is not None}
        records = self._records(paths)
        names = class_order({canonical(label) for _, label, _ in records["train"]})
        if len(names) < 2:
            raise DatasetError(
                f"{paths['train']}: every example has the label {names[0]!r}; a classifier needs two classes or more"
            )
        self._read_classes = names
        return self._labelled(records, paths, names, f"the training file {paths['train']}")

    def _records(self, paths: dict[str, Path]) -> dict[str, list[Record]]:
        return {
            split: read_records(
                path,
                read_text(path, self.encoding),
                file_format(path, self.format),
                self.label_column,
                self.text_column,
            )
            for split, path in paths.items()
        }

    @staticmethod
    def _labelled(
        records: dict[str, list[Record]], paths: dict[str, Path], names: list[str], whose: str
    ) -> dict[str, Texts]:
        """Split -> (texts, class indices); a label not among `names` (whose: where they came
        from) is an error naming its file and line."""
        index = {name: i for i, name in enumerate(names)}
        texts: dict[str, Texts] = {}
        for split, rows in records.items():
            for line, label, _ in rows:
                if canonical(label) not in index:
                    shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
                    raise DatasetError(
                        f"{paths[split]}:{line}: label {label!r} is not in {whose} (its labels: {shown})"
                    )
            texts[split] = ([t for *_, t in rows], [index[canonical(lb)] for _, lb, _ in rows])
        return texts

    def _evaluation_splits(self) -> dict[str, tuple[torch.Tensor, ...]]:
        """The validation and test files given, encoded with the vocabulary and classes of the
        checkpoint loaded before (what evaluating on other files needs): data.train is not read."""
        paths = given({s: self.paths[s] for s in ("val", "test")})
        texts = self._labelled(
            self._records(paths), paths, list(self.class_names), "the checkpoint's classes"
        )
        assert self.vocab is not None
        return {s: tuple(padded(self.vocab, self.tokens(t), y)) for s, (t, y) in texts.items()}

    def _hold_out(self, train: Texts) -> tuple[Texts, Texts]:
        texts, labels = train
        count = held_out_count(self.val_size, len(texts))
        if not 0 < count < len(texts):
            raise DatasetError(
                f"data.val_size={self.val_size} holds out {count} of the {len(texts)} examples of "
                f"{self.paths['train']}: give a count in [1, {len(texts) - 1}] or a fraction, or data.val=PATH"
            )
        held = stratified_index(torch.tensor(labels), count / len(texts), self.split_seed).tolist()
        rest = sorted(set(range(len(texts))) - set(held))
        pick = lambda ids: ([texts[i] for i in ids], [labels[i] for i in ids])  # noqa: E731
        return pick(rest), pick(held)

    def _adopt_classes(self, names: list[str]) -> None:
        if self.class_names and list(self.class_names) != list(names):
            raise DatasetError(
                f"the checkpoint's classes ({', '.join(self.class_names)}) and those of "
                f"{self.paths['train']} ({', '.join(names)}) differ"
            )
        self.class_names = tuple(names)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.class_names:
            state["class_names"] = list(self.class_names)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "class_names" in state:
            self._adopt_classes(state["class_names"])
