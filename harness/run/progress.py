"""The progress bar every run with trainer.enable_progress_bar gets."""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar

from lightning_modules.base import is_logging_step


class ProgressBar(TQDMProgressBar):
    """Lightning's progress bar, redrawn at most every `min_interval_s` seconds, showing train/loss
    as of the last logging step.

    Lightning redraws the bar on every batch: a write to stderr per step, which W&B's console
    capture forwards to its service, and which fills log files on clusters. And a metric logged
    with prog_bar=True is turned into a Python number on every step, which on a GPU waits for the
    step to finish (a host-device sync per step); this bar reads the loss only every
    log_every_n_steps, when the loggers read it anyway."""

    def __init__(
        self, keys: tuple[str, ...] = ("train/loss",), min_interval_s: float = 0.5
    ) -> None:
        super().__init__()
        self.keys, self.min_interval_s = keys, min_interval_s
        self.shown: dict[str, float] = {}
        self.drawn_at = -math.inf  # time.monotonic() of the last redraw

    def _should_update(self, current: int, total: int) -> bool:  # Lightning's hook: redraw now?
        now = time.monotonic()
        if not self.is_enabled or (current != total and now - self.drawn_at < self.min_interval_s):
            return False
        self.drawn_at = now
        return True

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:
        if is_logging_step(trainer):
            metrics = trainer.callback_metrics
            self.shown = {k: float(metrics[k]) for k in self.keys if k in metrics}
        super().on_train_batch_end(trainer, pl_module, *args)

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        return {**super().get_metrics(trainer, pl_module), **self.shown}
