"""Tokenisers (text -> list of token strings) and the Vocabulary (token <-> index).

Plain Python on purpose (no torchtext, see README): a vocabulary is a list of strings, which is
also what travels in a checkpoint.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

PAD, UNK, MASK = "<pad>", "<unk>", "<mask>"


def characters(text: str) -> list[str]:
    return list(text)


def whitespace(text: str) -> list[str]:
    """For corpora published already tokenised (PTB, WikiText, SST)."""
    return text.split()


_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def basic_english(text: str) -> list[str]:
    """Lower-cased words, numbers and single punctuation marks, for raw text (IMDB, AG News):
    "It's <br />GREAT!" -> ["it's", "great", "!"]. HTML line breaks (IMDB) count as spaces."""
    return _WORD.findall(text.replace("<br />", " ").lower())


class Vocabulary:
    """The specials first (in the order given), then every token seen at least min_freq times,
    most frequent first (ties in order of first appearance). Unknown tokens map to <unk>."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError("a vocabulary cannot hold the same token twice")
        self.unk_index = self.index.get(UNK)

    @classmethod
    def build(
        cls, sequences: Iterable[Sequence[str]], specials: Sequence[str], min_freq: int = 1
    ) -> Vocabulary:
        counts: Counter[str] = Counter()
        for seq in sequences:
            counts.update(seq)
        kept = [t for t, n in counts.most_common() if n >= min_freq and t not in specials]
        return cls([*specials, *kept])

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def encode(self, tokens: Sequence[str]) -> torch.Tensor:
        """Token strings -> int64 indices (T,)."""
        if self.unk_index is None:
            return torch.tensor([self.index[t] for t in tokens], dtype=torch.long)
        get, unk = self.index.get, self.unk_index
        return torch.tensor([get(t, unk) for t in tokens], dtype=torch.long)

    def decode(self, indices: Iterable[int]) -> list[str]:
        return [self.tokens[int(i)] for i in indices]
