"""The metrics a run reports: the trainer's last logged values, and the validation metrics at the
best validation check (by task.monitor), kept in checkpoints so a resumed run remembers them."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch

from harness.numbers import is_number


def as_number(value: Any) -> float | int | None:
    if isinstance(value, torch.Tensor):
        value = value.item()
    if is_number(value):
        return value if math.isfinite(value) else None  # JSON has no NaN
    return None


def metrics_of(trainer: L.Trainer) -> dict[str, float]:
    return {
        k: v
        for k, v in ((k, as_number(v)) for k, v in trainer.callback_metrics.items())
        if v is not None
    }


class BestMetrics(L.Callback):
    """Remembers every validation metric at the best value of `monitor` seen so far."""

    def __init__(self, monitor: str, mode: str) -> None:
        self.monitor, self.mode = monitor, mode
        self.best: dict[str, float] = {}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = as_number(trainer.callback_metrics.get(self.monitor))
        if value is None:
            return
        old = self.best.get(self.monitor)
        if old is None or (value > old if self.mode == "max" else value < old):
            self.best = {k: v for k, v in metrics_of(trainer).items() if k.startswith("val/")}
            self.best.update(epoch=trainer.current_epoch, step=trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        return {"best": dict(self.best)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = dict(state_dict.get("best", {}))
