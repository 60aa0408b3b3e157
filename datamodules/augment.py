"""Batch-wide image transforms on uint8 tensors (B, C, H, W), on whatever device they live on."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (B, C, H, W) in [0, 255] -> float32, each channel shifted and scaled."""
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x.float() / 255.0 - m) / s


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by `padding` pixels, then cut an HxW window at a random offset per image
    (torchvision's RandomCrop(size, padding=padding), applied to a whole batch at once)."""
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding,) * 4)  # (B, C, H+2p, W+2p)
    dy = torch.randint(0, 2 * padding + 1, (b, 1), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (b, 1), device=x.device, generator=generator)
    rows = (dy + torch.arange(h, device=x.device)).view(b, 1, h, 1)  # (B, 1, H, 1)
    cols = (dx + torch.arange(w, device=x.device)).view(b, 1, 1, w)  # (B, 1, 1, W)
    batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    chans = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, chans, rows, cols]


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], device=x.device, generator=generator) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
