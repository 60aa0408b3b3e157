"""An optimizer class of the kind a user writes in their own package: the tests run it through
optim=custom, the suite and the report as a user's would be."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


class SignMomentum(torch.optim.Optimizer):
    """signSGD with momentum (Bernstein et al., 2018): step lr * sign(momentum buffer), with
    decoupled weight decay. Keeps one buffer per parameter, so a resume must restore it."""

    def __init__(
        self, params: Iterable[Any], lr: float = 1e-3, beta: float = 0.9, weight_decay: float = 0.0
    ) -> None:
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must be in [0, 1), got {beta}")
        super().__init__(params, dict(lr=lr, beta=beta, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("buf", torch.zeros_like(p))
                buf.mul_(group["beta"]).add_(p.grad, alpha=1 - group["beta"])
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(buf.sign(), alpha=-group["lr"])
        return loss
