"""A multi-layer perceptron on flattened pixels: Linear - ReLU - Dropout per hidden layer."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn


class MLP(nn.Module):
    input_kind: ClassVar[str] = "image"

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        num_classes: int,
        hidden: tuple[int, ...] | list[int] = (512, 256),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_channels * image_size * image_size
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        self.encoder = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, hidden[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, num_classes) logits
