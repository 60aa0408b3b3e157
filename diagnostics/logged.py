"""The diagnostics' values of a logging step, straight to the run's loggers in one row.
Lightning's `self.log` costs ~0.4 ms a call on a CPU (its result collection checks and copies per
call), and every key it holds is walked again at the end of every step after; OptimizerStats and
Throughput made 5-12 such calls a logging step. Here the tensors are read in one host read (one
device sync, not one a value), and the values also go to trainer.callback_metrics, where
results.json takes the last of each."""

from __future__ import annotations

from collections.abc import Mapping

import lightning as L
import torch


def log_values(trainer: L.Trainer, values: Mapping[str, torch.Tensor | float]) -> None:
    """One row of `values` (0-d tensors or numbers) at this training batch's logging step."""
    tensors = [k for k, v in values.items() if isinstance(v, torch.Tensor)]
    row = dict(values)
    if tensors:
        read = torch.stack([values[k].detach().float().reshape(()) for k in tensors]).tolist()
        row.update(zip(tensors, read, strict=True))
    trainer.callback_metrics.update(row)
    # The step Lightning writes this batch's own row at (it counts the steps before this one).
    step = trainer.fit_loop.epoch_loop._batches_that_stepped
    for logger in trainer.loggers:
        logger.log_metrics(row, step=step)
