"""A small transformer encoder (Vaswani et al., 2017, pre-norm as most recent encoders): token
embeddings plus sinusoidal positions, `n_layer` blocks of bidirectional self-attention that
ignore padding, then

- a sentence classifier: the mean of the final states over each example's tokens -> the classes,
  when the data gives `num_classes`;
- a masked language model (BERT-style): a distribution over the vocabulary at every position,
  when it does not. Every position sees the whole sequence, so it cannot do next-token language
  modelling (use gpt for that).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn


def sinusoids(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """The fixed position encodings of Vaswani et al. (2017): (length, dim)."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]  # (T, 1)
    freq = torch.exp(torch.arange(0, dim, 2, device=device) * (-math.log(10000.0) / dim))
    enc = torch.zeros(length, dim, device=device)
    enc[:, 0::2] = torch.sin(pos * freq)
    enc[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return enc


class TransformerEncoder(nn.Module):
    input_kind: ClassVar[str] = "tokens"
    outputs: ClassVar[tuple[str, ...]] = ("class", "tokens")
    bidirectional: ClassVar[bool] = True

    def __init__(
        self,
        vocab_size: int,
        num_classes: int | None = None,
        pad_index: int | None = None,
        d_model: int = 128,
        n_head: int = 4,
        n_layer: int = 2,
        d_ff: int = 512,  # width of each block's feed-forward layer
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"model.d_model={d_model} must be a multiple of model.n_head={n_head}")
        self.classify = num_classes is not None
        self.d_model = d_model
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=pad_index)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model, n_head, d_ff, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(
            layer, n_layer, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.head = nn.Linear(d_model, num_classes if self.classify else vocab_size)

    def features(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (B, T) -> states (B, T, d_model), or their mean over each example's
        lengths (B,) tokens (B, d_model) for a classifier."""
        T = tokens.shape[1]
        x = self.embed(tokens) + sinusoids(T, self.d_model, tokens.device)  # (B, T, d_model)
        pad = None
        if lengths is not None:
            pad = torch.arange(T, device=tokens.device)[None, :] >= lengths[:, None]  # (B, T)
        h = self.encoder(self.drop(x), src_key_padding_mask=pad)  # (B, T, d_model)
        if not self.classify:
            return h
        if pad is None:
            return h.mean(1)
        keep = (~pad).unsqueeze(2).to(h.dtype)  # (B, T, 1)
        return (h * keep).sum(1) / keep.sum(1)  # (B, d_model)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(tokens, lengths))  # (B, T, vocab) or (B, num_classes)
