"""The optimizer's and the schedule's config checks: value ranges of the knobs people sweep, and a
dry build of both on a stand-in parameter, so that torch.optim's own rules (a negative lr, betas
out of range) are one ConfigError before any data is read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.errors import constructor_errors
from harness.numbers import is_number
from optim.factory import build_optimizer_factory, build_scheduler_factory
from optim.target import check_optimizer_target

# key -> (test, what is allowed). Missing keys are skipped: not every optimizer has momentum.
OPTIM_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "optim.lr": (lambda v: is_number(v) and v > 0, "a positive number"),
    "optim.weight_decay": (lambda v: is_number(v) and v >= 0, "a number >= 0"),
    "optim.momentum": (lambda v: is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
}


def dry_build_optimizer(cfg: Any, optim_name: str, scheduler_name: str) -> None:
    """Build the optimizer on one 2x2 parameter and the schedule for 100 steps."""
    import torch

    check_optimizer_target(cfg.optim, optim_name)
    with constructor_errors(f"optim={optim_name} ({cfg.optim._target_})"):
        optimizer = build_optimizer_factory(cfg)([torch.nn.Parameter(torch.zeros(2, 2))])
    with constructor_errors(f"scheduler={scheduler_name}"):
        factory = build_scheduler_factory(cfg)
        if factory is not None:
            factory(optimizer, total_steps=100)
