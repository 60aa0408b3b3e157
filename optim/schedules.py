"""Learning-rate schedules sized from the run's length.

Each function takes the optimizer and the run's total optimizer steps (Lightning's
`trainer.estimated_stepping_batches`, which accounts for max_epochs, max_steps and gradient
accumulation) and returns a real torch scheduler. Lengths are fractions of the run, so a schedule
stays right when the epochs, batch size or accumulation change. All but `plateau` step once per
optimizer step; `plateau` once per validation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, MultiStepLR, OneCycleLR, ReduceLROnPlateau


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"scheduler.{name} must be in [0, 1), got {value!r}")


def constant(optimizer: Optimizer, total_steps: int, warmup_fraction: float = 0.0) -> LambdaLR:
    return cosine(optimizer, total_steps, warmup_fraction=warmup_fraction, min_lr_ratio=1.0)


def cosine(
    optimizer: Optimizer, total_steps: int, warmup_fraction: float = 0.0, min_lr_ratio: float = 0.0
) -> LambdaLR:
    """Linear warm-up from 0 over warmup_fraction of the steps, then a cosine from the optimizer's
    lr down to min_lr_ratio * lr at the last step (nanoGPT's schedule with fractions)."""
    _check_fraction("warmup_fraction", warmup_fraction)
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(f"scheduler.min_lr_ratio must be in [0, 1], got {min_lr_ratio!r}")
    warmup = round(warmup_fraction * total_steps)
    decay = max(1, total_steps - warmup)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / decay)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def step(
    optimizer: Optimizer,
    total_steps: int,
    milestones: Sequence[float] = (0.5, 0.75),
    gamma: float = 0.1,
) -> MultiStepLR:
    for m in milestones:
        _check_fraction("milestones", m)
    return MultiStepLR(optimizer, [round(m * total_steps) for m in milestones], gamma=gamma)


def onecycle(
    optimizer: Optimizer,
    total_steps: int,
    pct_start: float = 0.25,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> OneCycleLR:
    peaks = [group["lr"] for group in optimizer.param_groups]
    # Cycle momentum (or Adam's beta1) inversely to the lr, as the paper does, but never turn
    # plain SGD (momentum 0) into momentum SGD.
    cycle = "betas" in optimizer.defaults or optimizer.defaults.get("momentum", 0) > 0
    return OneCycleLR(
        optimizer,
        max_lr=peaks,
        total_steps=total_steps,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        cycle_momentum=cycle,
    )


def plateau(
    optimizer: Optimizer,
    total_steps: int,
    mode: str = "min",
    factor: float = 0.1,
    patience: int = 5,
) -> ReduceLROnPlateau:
    if mode not in ("min", "max"):
        raise ValueError(f"scheduler.mode must be min or max, got {mode!r}")
    return ReduceLROnPlateau(optimizer, mode=mode, factor=factor, patience=patience)
