"""The small convolutional classifier of the PyTorch MNIST example (pytorch/examples, mnist/main.py):
conv3x3(32) - ReLU - conv3x3(64) - ReLU - maxpool2 - dropout(0.25) - linear(128) - ReLU -
dropout(0.5) - linear(classes). About 1.2M parameters on 28x28 MNIST."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn


class SmallCNN(nn.Module):
    input_kind: ClassVar[str] = "image"

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        num_classes: int,
        channels: tuple[int, int] | list[int] = (32, 64),
        hidden: int = 128,
        dropout: tuple[float, float] | list[float] = (0.25, 0.5),
    ) -> None:
        super().__init__()
        c1, c2 = channels
        side = (image_size - 4) // 2  # two unpadded 3x3 convolutions, then a 2x2 max-pool
        if side < 1:
            raise ValueError(
                f"SmallCNN needs images of at least 6x6 pixels, got {image_size}x{image_size}"
            )
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(dropout[0]),
            nn.Flatten(),  # (B, c2 * side * side)
            nn.Linear(c2 * side * side, hidden),
            nn.ReLU(),
            nn.Dropout(dropout[1]),
        )
        self.head = nn.Linear(hidden, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, num_classes) logits
