"""The metrics a run reports: the trainer's last logged values, and its score.

A run's score is `best/<monitor>` (best/val/acc, best/val/loss ...): the monitored metric at the
best validation, the one whose checkpoint is tested, beside every other validation metric at that
same validation. Other keys are the logged names (val/acc, test/acc ...): the last value of each,
test metrics measured on that best checkpoint. "best" holds the same validation metrics
unprefixed, with the epoch and step of that validation. Kept in checkpoints, so a resumed run
remembers them.
"""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
import torch

from harness.numbers import is_number
from harness.rundir.files import TIME  # metrics.csv's column of training seconds


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
    """Remembers every validation metric at the best value of `monitor` seen so far, and logs them
    as best/<name> after every validation (a history series: W&B's sweeps read it while the run
    runs, and its last value is the summary's).

    "Best" is decided as the run's ModelCheckpoint(monitor, mode, save_top_k=1) decides which
    checkpoint to keep, so the score describes the checkpoint that is tested: the first
    validation, then only a strictly better value (of equal values the first is kept), NaN being
    the worst value, and at most one per optimizer step (the checkpoint saves once per step).
    Metrics are reduced across DDP ranks before this runs, so every rank decides the same."""

    def __init__(self, monitor: str, mode: str) -> None:
        self.monitor, self.mode = monitor, mode
        self.best: dict[str, float] = {}
        self.trained_s = 0.0  # training seconds of earlier attempts (a resumed run)
        self._started: float | None = None

    def train_seconds(self) -> float:
        """Wall-clock seconds of training so far, validation included, over every attempt."""
        now = time.monotonic()
        return self.trained_s + (now - self._started if self._started is not None else 0.0)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.monotonic()

    def _better(self, value: float) -> bool:
        if "step" not in self.best:
            return True
        old = self.best.get(self.monitor, -math.inf if self.mode == "max" else math.inf)  # NaN
        return value > old if self.mode == "max" else value < old  # False for NaN

    def scores(self) -> dict[str, float]:
        """{"best/val/acc": ..., "best/val/loss": ...}: results.json's and the summary's score."""
        return {f"best/{k}": v for k, v in self.best.items() if "/" in k}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or trainer.global_step == self.best.get("step", 0):
            return  # the checkpoint neither saves at step 0 nor twice at one step
        value = float(value)
        if self._better(value):
            self.best = {k: v for k, v in metrics_of(trainer).items() if k.startswith("val/")}
            self.best.update(epoch=trainer.current_epoch, step=trainer.global_step)
        # With the training time, which time to target reads (harness.report), at the
        # step Lightning logged this validation's val/ row with (the step before the increment
        # that follows validation). Its loggers write on rank zero only.
        row = {**self.scores(), TIME: round(self.train_seconds(), 3)}
        step = trainer.fit_loop.epoch_loop._batches_that_stepped
        for logger in trainer.loggers:
            logger.log_metrics(row, step=step)

    def state_dict(self) -> dict[str, Any]:
        return {"best": dict(self.best), "trained_s": self.train_seconds()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = dict(state_dict.get("best", {}))
        self.trained_s, self._started = state_dict.get("trained_s", 0.0), None
