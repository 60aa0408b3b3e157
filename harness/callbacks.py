"""Callbacks every run gets (the optional ones come from the `callbacks` config group)."""

from __future__ import annotations

from typing import Any

import lightning as L


class ConfigInCheckpoint(L.Callback):
    """Stores the run's resolved config (plain values) in every checkpoint, so a checkpoint alone
    is enough to rebuild the model it holds."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict
    ) -> None:
        checkpoint["config"] = self.config


class ValidateAtLastStep(L.Callback):
    """Lightning stops at trainer.max_steps without validating when that step falls mid-epoch, so
    a run sized in steps would end with stale validation metrics and no best checkpoint for its
    last stretch. Asking it to stop at that step makes it validate first (its early-stop path)."""

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if 0 < trainer.max_steps <= trainer.global_step:
            trainer.should_stop = True
