"""The one rule for "is this a logging step": the loggers get an optimizer step's metrics every
trainer.log_every_n_steps steps, and at the last step of a run sized by trainer.max_steps.
Everything that does extra work for the logs (the modules' self.log calls, the diagnostics, the
progress bar) asks here, so that no step's work is done for logs nobody writes."""

from __future__ import annotations

from typing import Any


def logs_step(trainer: Any, step: int) -> bool:
    """Whether optimizer step `step` (counted from 1) is one whose metrics the loggers write."""
    every = trainer.log_every_n_steps
    return (every > 0 and step % every == 0) or step == trainer.max_steps


def is_logging_step(trainer: Any) -> bool:
    """True in the hooks of the training batch that completes a logging step (not in the earlier
    batches of a gradient accumulation). Lightning has no public flag for this; the count of
    batches that stepped is what its own logger connector and monitors read."""
    if trainer.fit_loop._should_accumulate():
        return False
    return logs_step(trainer, trainer.fit_loop.epoch_loop._batches_that_stepped + 1)
