"""When Lightning writes step metrics: the diagnostics do their (small) extra work only then."""

from __future__ import annotations

import lightning as L


def is_logging_step(trainer: L.Trainer) -> bool:
    """True in the hooks of a training batch whose step metrics Lightning will write: the batch
    that completes an optimizer step, every trainer.log_every_n_steps steps. Lightning has no
    public flag for this; its own monitors (LearningRateMonitor, ThroughputMonitor) read the
    same private attributes."""
    return bool(
        trainer._logger_connector.should_update_logs and not trainer.fit_loop._should_accumulate()
    )
