"""Batch-wide image transforms on uint8 tensors (B, C, H, W), on whatever device they live on."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (B, C, H, W) in [0, 255] -> float32 (x / 255 - mean) / std per channel, as one
    multiply-add."""
    scale, shift = _affine(tuple(mean), tuple(std), x.device)
    return torch.addcmul(shift, x.float(), scale)


@functools.cache
def _affine(
    mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift), each (1, C, 1, 1) on `device`, made once: building them from Python
    numbers for every batch would be a blocking copy to the GPU (a sync per step)."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (1 / (255 * s)).to(device), (-m / s).to(device)


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by `padding` pixels, then cut an HxW window at a random offset per image
    (torchvision's RandomCrop(size, padding=padding), applied to a whole batch at once). One
    gather over the flattened pixels: no per-image Python, no data-dependent shapes (no sync)."""
    b, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding,) * 4).flatten(2)  # (B, C, (H+2p)(W+2p))
    dy = torch.randint(0, 2 * padding + 1, (b, 1, 1), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (b, 1, 1), device=x.device, generator=generator)
    rows = dy + torch.arange(h, device=x.device).view(1, h, 1)  # (B, H, 1)
    cols = dx + torch.arange(w, device=x.device).view(1, 1, w)  # (B, 1, W)
    index = (rows * (w + 2 * padding) + cols).view(b, 1, h * w).expand(b, c, h * w)
    return padded.gather(2, index).view(b, c, h, w)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], device=x.device, generator=generator) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
