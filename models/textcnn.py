"""The convolutional sentence classifier of Kim (2014), "Convolutional Neural Networks for
Sentence Classification": word vectors, convolutions of widths 3, 4 and 5 with 100 feature maps
each and ReLU, max-over-time pooling, dropout 0.5, and a linear layer to the classes.

With random word vectors trained with the network it is Kim's CNN-rand (word vectors drawn from
U[-0.25, 0.25] as in his code). Kim pads each sentence with width-1 zero vectors on both sides;
here the convolution pads both sides the same way and the windows that lie wholly in a batch's
extra padding are left out of the max, so an example's output does not depend on its batch.
Kim's max-norm constraint on the output weights (3) is not applied.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn


class TextCNN(nn.Module):
    input_kind: ClassVar[str] = "tokens"
    outputs: ClassVar[tuple[str, ...]] = ("class",)

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        pad_index: int = 0,
        embed_dim: int = 300,
        widths: tuple[int, ...] | list[int] = (3, 4, 5),  # tokens per convolution window
        maps: int = 100,  # feature maps per width
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.widths = list(widths)
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_index)
        nn.init.uniform_(self.embed.weight, -0.25, 0.25)
        with torch.no_grad():
            self.embed.weight[pad_index].zero_()  # padding is a zero vector, as in Kim's code
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, maps, w, padding=w - 1) for w in widths)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(maps * len(self.widths), num_classes)

    def features(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, T), lengths (B,) -> pooled features (B, maps * len(widths))."""
        x = self.embed(tokens).transpose(1, 2)  # (B, embed_dim, T)
        pooled = []
        for w, conv in zip(self.widths, self.convs, strict=True):
            h = torch.relu(conv(x))  # (B, maps, T + w - 1): window j covers tokens j-w+1 .. j
            # Windows starting past a sentence's end see only padding: not part of its max.
            # (h >= 0 after the ReLU, so a 0 there never wins over a real window.)
            valid = torch.arange(h.shape[2], device=h.device) < (lengths + w - 1)[:, None]
            pooled.append(h.masked_fill(~valid[:, None, :], 0.0).amax(dim=2))  # (B, maps)
        return self.drop(torch.cat(pooled, dim=1))

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(tokens, lengths))  # (B, num_classes) logits
