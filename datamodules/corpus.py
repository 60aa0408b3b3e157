"""Corpora for language modelling: each split is one long sequence of token indices, and a batch
is `batch_size` blocks of `block_size` consecutive tokens x with their targets y, the same blocks
shifted by one token (y[t] = x[t + 1]), as nanoGPT's get_batch makes them.

Training blocks start at random offsets: the split is cut into consecutive blocks of block_size
tokens, and each epoch every block is moved by a random 0..block_size-1 tokens, so an epoch sees
about every token once and any offset is as likely as any other. The offsets come from
(seed, epoch, batch) like every random choice of the TensorLoader (repeatable, resumable).
Validation and test use the unshifted blocks: the loss is measured on every token of the split
(but the last < block_size + 1), each predicted from the tokens before it in its block.

The vocabulary comes from the training split only; <unk> stands for anything else and <mask> is
reserved for masked language modelling.
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

import torch

from datamodules.image import check_positive_int
from datamodules.tensor_loader import Batch, TensorLoader, trainer_loader
from datamodules.text import TextDataModule
from datamodules.vocab import MASK, UNK, Vocabulary

EOS = "<eos>"  # ends every line of a word-level corpus, as in PyTorch's word_language_model


def words_and_eos(text: str) -> list[str]:
    return [word for line in text.splitlines() for word in [*line.split(), EOS]]


def blocks(corpus: torch.Tensor, block_size: int, shift: bool, batch: Batch, g: torch.Generator):
    """Block start offsets (B,) -> inputs x (B, T) and targets y (B, T), T = block_size."""
    (starts,) = batch
    if shift:
        starts = starts + torch.randint(
            0, block_size, starts.shape, device=starts.device, generator=g
        )
    tokens = corpus[starts[:, None] + torch.arange(block_size + 1, device=starts.device)]
    return tokens[:, :-1], tokens[:, 1:]  # (B, T), (B, T)


class CorpusDataModule(TextDataModule):
    target_kind = "tokens"
    char_level: ClassVar[bool] = False  # tokens are characters: bits per character is logged

    def __init__(
        self,
        root: str,
        batch_size: int = 64,
        *,
        block_size: int = 256,
        download: bool = True,
        verify: bool = True,
        cache_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(
            root, batch_size, download=download, verify=verify, cache_dir=cache_dir, seed=seed
        )
        check_positive_int("data.block_size", block_size)
        self.block_size = block_size

    def read(self) -> dict[str, list[str]]:
        """Split name ("train", "val", "test") -> its tokens."""
        raise NotImplementedError

    def build(self) -> dict[str, Any]:
        splits = self.read()
        vocab = Vocabulary.build([splits["train"]], specials=(UNK, MASK))
        return {
            "vocab": vocab.tokens,
            "splits": {name: [vocab.encode(tokens)] for name, tokens in splits.items()},
        }

    @property
    def dims(self) -> dict[str, Any]:
        assert self.vocab is not None, "call setup() first"
        for split in self.splits or {}:
            self._block_count(split, train=split == "train")  # every split fills a block
        return {
            "vocab_size": len(self.vocab),
            "block_size": self.block_size,
            "vocab": list(self.vocab.tokens),
            "char_level": self.char_level,
            "mask_index": self.vocab.index[MASK],
        }

    def _block_count(self, split: str, train: bool) -> int:
        """Training offsets k*T + (0..T-1) and evaluation offsets k*T must leave T+1 tokens."""
        size, t = len(self._split(split)[0]), self.block_size
        count = (size - t) // t if train else (size - 1) // t
        if count < 1:
            raise ValueError(
                f"data.block_size={t} leaves no block in the {split} split of {self.name} "
                f"({size} tokens): use a smaller data.block_size"
            )
        return count

    def _loader(self, split: str, train: bool) -> TensorLoader:
        (corpus,) = self._split(split)
        t = self.block_size
        starts = torch.arange(self._block_count(split, train)) * t
        loader = trainer_loader(
            self.trainer, (starts,), self.batch_size, train=train, seed=self.seed
        )
        # Random offsets exactly when the order is random (not for evaluation, nor under
        # overfit_batches, which wants the same batches every epoch).
        loader.transform = partial(blocks, corpus.to(loader.device), t, loader.sampler.shuffle)
        return loader
