"""The console noise of a run, silenced in one place, and Lightning's log lines sent to train.log.

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
import warnings

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
