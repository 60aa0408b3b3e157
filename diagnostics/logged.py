"""The diagnostics' values of a logging step, straight to the run's loggers in one row.
Lightning's `self.log` costs ~0.4 ms a call on a CPU (its result collection checks and copies per
call), and every key it holds is walked again at the end of every step after; OptimizerStats and
Throughput made 5-12 such calls a logging step. Here the tensors are read in one host read (one
device sync, not one a value), and the values also go to trainer.callback_metrics, where
results.json takes the last of each."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
import torch


class RowLogger(L.Callback):
    """`log_row` keeps a logging step's row and writes it once Lightning has written its own row
    of that step (just after the batch-end hooks), at the next hook: a run killed in between, as
    the resume tests kill runs, has written neither, and resuming writes both."""

    def __init__(self) -> None:
        self._row: tuple[int, dict[str, float]] | None = None  # (step, values) not yet written

    def log_row(self, trainer: L.Trainer, values: Mapping[str, torch.Tensor | float]) -> None:
        """Called in a training batch's hooks: `values` (0-d tensors or numbers) at its step."""
        tensors = [k for k, v in values.items() if isinstance(v, torch.Tensor)]
        row = dict(values)
        if tensors:
            read = torch.stack([values[k].detach().float().reshape(()) for k in tensors]).tolist()
            row.update(zip(tensors, read, strict=True))
        trainer.callback_metrics.update(row)
        # The step Lightning writes this batch's row at (it counts the steps before this one).
        self._row = (trainer.fit_loop.epoch_loop._batches_that_stepped, row)

    def write_row(self, trainer: L.Trainer) -> None:
        if self._row is None or trainer.fit_loop.epoch_loop._batches_that_stepped <= self._row[0]:
            return  # nothing kept, or Lightning has not written that step's row yet
        (step, row), self._row = self._row, None
        for logger in trainer.loggers:
            logger.log_metrics(row, step=step)

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self.write_row(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self.write_row(trainer)

    def on_train_end(self, trainer: L.Trainer, *args: Any) -> None:
        self.write_row(trainer)

    def on_exception(self, trainer: L.Trainer, *args: Any) -> None:
        self.write_row(trainer)  # e.g. SIGTERM, raised after Lightning wrote the step's row
