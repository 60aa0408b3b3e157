"""ResNet for small images (He et al., 2016, "Deep Residual Learning for Image Recognition").

The CIFAR variant used by most CIFAR-10 training recipes: a 3x3 stride-1 stem and no max-pool,
so a 32x32 image keeps full resolution in the first stage; blocks=[2, 2, 2, 2] is ResNet-18
(11.2M parameters at width 64 and 10 classes).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection; a 1x1 projection when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    input_kind: ClassVar[str] = "image"

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        blocks: tuple[int, ...] | list[int] = (2, 2, 2, 2),
        width: int = 64,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        stages, channels = [], width
        for i, n in enumerate(blocks):
            out_channels = width * 2**i
            stride = 1 if i == 0 else 2  # halve the resolution at each later stage
            layers = [BasicBlock(channels, out_channels, stride)]
            layers += [BasicBlock(out_channels, out_channels, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layers))
            channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images -> (B, D) pooled features, D = width * 2**(len(blocks)-1)."""
        x = self.stages(self.stem(x))  # (B, D, H/8, W/8) for four stages
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, num_classes) logits
