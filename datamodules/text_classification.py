"""Text classification: each example a token sequence and a class. A split is held as
(tokens (N, L) padded with <pad>, lengths (N,), labels (N,)); a batch is cut to its own longest
example and comes as ((tokens (B, T), lengths (B,)), labels (B,)).

The vocabulary comes from the training split only: the specials <pad> (index 0) and <unk>, then
every word seen at least `min_freq` times there. A dataset without a validation split gives up a
seeded `val_size` examples of its training split (before the vocabulary is built).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch

from datamodules.image import check_positive_int, split_off
from datamodules.tensor_loader import Batch, TensorLoader, trainer_loader
from datamodules.text import TextDataModule
from datamodules.vocab import PAD, UNK, Vocabulary

Texts = tuple[list[str], list[int]]  # (texts, labels)


def padded(vocab: Vocabulary, sequences: list[list[str]], labels: list[int]) -> list[torch.Tensor]:
    """-> tokens (N, L) int64 padded with <pad>, lengths (N,), labels (N,); L = longest."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    tokens = torch.full((len(sequences), int(lengths.max())), vocab.index[PAD], dtype=torch.long)
    for i, seq in enumerate(sequences):
        tokens[i, : len(seq)] = vocab.encode(seq)
    return [tokens, lengths, torch.tensor(labels, dtype=torch.long)]


def trim(batch: Batch, g: torch.Generator) -> Any:
    tokens, lengths, labels = batch
    return (tokens[:, : int(lengths.max())], lengths), labels  # padding per batch


class TextClassificationDataModule(TextDataModule):
    target_kind = "class"
    class_names: ClassVar[tuple[str, ...]]
    tokenize: ClassVar[Callable[[str], list[str]]]

    def __init__(
        self,
        root: str,
        batch_size: int = 50,
        *,
        min_freq: int = 1,
        max_length: int | None = None,
        val_size: int | None = None,
        split_seed: int = 0,
        download: bool = True,
        verify: bool = True,
        cache_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(
            root, batch_size, download=download, verify=verify, cache_dir=cache_dir, seed=seed
        )
        check_positive_int("data.min_freq", min_freq)
        if max_length is not None:
            check_positive_int("data.max_length", max_length)
        if val_size is not None:
            check_positive_int("data.val_size", val_size)
        self.min_freq, self.max_length = min_freq, max_length  # max_length: tokens kept (the first)
        self.val_size, self.split_seed = val_size, split_seed

    def read(self) -> dict[str, Texts]:
        """Split name -> (texts, labels 0..num_classes-1), for "train", "test" and maybe "val"."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("min_freq", "max_length", "val_size", "split_seed")}

    def build(self) -> dict[str, Any]:
        raw = self.read()
        if "val" not in raw:
            raw["train"], raw["val"] = self._hold_out(raw["train"])
        tokenized = {split: (self.tokens(texts), labels) for split, (texts, labels) in raw.items()}
        vocab = Vocabulary.build(tokenized["train"][0], specials=(PAD, UNK), min_freq=self.min_freq)
        return {
            "vocab": vocab.tokens,
            "splits": {split: padded(vocab, *pair) for split, pair in tokenized.items()},
        }

    def tokens(self, texts: list[str]) -> list[list[str]]:
        """Each text's first max_length tokens; one with none at all (an empty line) is <unk>."""
        return [self.tokenize(t)[: self.max_length] or [UNK] for t in texts]

    def _hold_out(self, train: Texts) -> tuple[Texts, Texts]:
        texts, labels = train
        if self.val_size is None or not self.val_size < len(texts):
            raise ValueError(
                f"data.val_size must be an integer in [1, {len(texts) - 1}] for {self.name}, "
                f"which has no validation split; got {self.val_size!r}"
            )
        ids = torch.arange(len(texts))
        (rest, _), (held, _) = split_off(ids, ids, self.val_size, self.split_seed)
        pick = lambda idx: ([texts[i] for i in idx], [labels[i] for i in idx])  # noqa: E731
        return pick(rest.tolist()), pick(held.tolist())

    @property
    def dims(self) -> dict[str, Any]:
        assert self.vocab is not None, "call setup() first"
        return {
            "vocab_size": len(self.vocab),
            "pad_index": self.vocab.index[PAD],
            "num_classes": len(self.class_names),
            "class_names": list(self.class_names),
        }

    def _loader(self, split: str, train: bool) -> TensorLoader:
        return trainer_loader(
            self.trainer, self._split(split), self.batch_size, train=train, seed=self.seed,
            transform=trim,
        )  # fmt: skip
