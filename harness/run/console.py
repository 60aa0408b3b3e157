"""What a run shows on the console: the noise silenced in one place, Lightning's log lines sent to
train.log, and the progress bar every run with trainer.enable_progress_bar gets.

Each filter names one message that tells the user nothing (issue 14's list):
- `Checkpoint directory ... exists and is not empty`: the harness owns RUN_DIR/checkpoints (it
  writes the W&B id there first, and resuming is decided by harness.run.resume).
- torch's `LeafSpec` deprecation, raised inside Lightning's loops (nothing to fix on our side).
- Lightning's "💡 Tip:" lines (litlogger, litmodels): advertising, no setting turns them off.
The several-ModelCheckpoint warning, the weights_only note and W&B's `anonymous` warning are
avoided at their source instead (recipe.test, callbacks.LastCheckpoint, tracking.wandb).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar

from lightning_modules.base import is_logging_step

WARNINGS = (  # (message regex, category)
    (r"Checkpoint directory .* exists and is not empty", UserWarning),
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),
)
TIP_LOGGER = "lightning.pytorch.utilities.rank_zero"  # where rank_zero_info records are made
LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")  # each has a handler


class _NoTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip:")


def silence_noise() -> None:
    """Install the filters above (idempotent: a multirun calls it once per job)."""
    for message, category in WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    tips = logging.getLogger(TIP_LOGGER)
    if not any(isinstance(f, _NoTips) for f in tips.filters):
        tips.addFilter(_NoTips())


def lightning_logs_to_root() -> None:
    """Importing Lightning gives its loggers their own stderr handlers (`lightning` always;
    `lightning.pytorch` and `.fabric`, with propagate=False, when logging is not set up yet, as
    in the checks' dry build), so train.log never sees them or the console sees them twice: undo
    that, once Hydra (or harness.run.app.start_job) has configured the root logger's console and file."""
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    logging.captureWarnings(True)  # the warnings left -> logger "py.warnings" -> train.log too


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
