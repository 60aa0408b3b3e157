"""A recurrent network over token embeddings (GRU or LSTM), in one of two roles:

- language model (char-rnn, Karpathy 2015; Zaremba et al., 2014): a distribution over the
  vocabulary at every position, when the data gives no `num_classes` (a corpus);
- sentence classifier: the last layer's final hidden state (both directions' when
  bidirectional) -> the classes, when it does.

`bidirectional=True` reads each sequence both ways; a masked language model wants that, a
next-token language model must not have it (it would see the token it predicts).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


class RNN(nn.Module):
    input_kind: ClassVar[str] = "tokens"
    outputs: ClassVar[tuple[str, ...]] = ("class", "tokens")

    def __init__(
        self,
        vocab_size: int,
        num_classes: int | None = None,
        pad_index: int | None = None,
        cell: str = "gru",
        embed_dim: int = 128,
        hidden: int = 256,
        layers: int = 2,
        dropout: float = 0.2,  # on the embeddings, between layers and on the outputs
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"model.cell must be one of {', '.join(CELLS)}, got {cell!r}")
        self.classify = num_classes is not None
        self.bidirectional = bidirectional
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_index)
        self.rnn = CELLS[cell](
            embed_dim,
            hidden,
            layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        self.drop = nn.Dropout(dropout)
        width = hidden * (2 if bidirectional else 1)
        self.head = nn.Linear(width, num_classes if self.classify else vocab_size)

    def features(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (B, T) -> per-position states (B, T, D) for a language model, or one state per
        sequence (B, D) for a classifier (lengths (B,) say where each sequence ends)."""
        x = self.drop(self.embed(tokens))  # (B, T, embed_dim)
        if not self.classify:
            out, _ = self.rnn(x)  # (B, T, D)
            return self.drop(out)
        if lengths is None:
            lengths = torch.full((len(tokens),), tokens.shape[1])
        # Packed: the recurrence stops at each sequence's end, never reading its padding.
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.rnn(packed)
        h = h[0] if isinstance(h, tuple) else h  # an LSTM returns (h, c)
        # h: (layers * directions, B, hidden); the last layer's forward and backward states
        last = h[-2:] if self.bidirectional else h[-1:]
        return self.drop(torch.cat(list(last), dim=1))  # (B, D)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(tokens, lengths))  # (B, T, vocab) or (B, num_classes)
