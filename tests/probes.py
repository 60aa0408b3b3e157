"""Callbacks that tests add to a real run: a signal sent at a chosen point (kill-and-resume tests,
Ctrl-C in set-up), and a check of the loader position. Added as
`+callbacks.kill={_target_:tests.probes.SignalAt,...}`."""

from __future__ import annotations

import os
import signal as signals
from pathlib import Path
from typing import Any

import lightning as L


class SignalAt(L.Callback):
    """Send `signal` to this process once training has made `step` optimizer steps, at the first
    `hook` after that: "train_batch_end", "validation_batch_end", "train_epoch_end" or
    "test_batch_end". Only once
    per `marker` file, so that the resumed run, with the very same config, runs to the end.
    `to_parent`: to the parent process instead (a sweep job's task, which runs train.py)."""

    def __init__(self, signal: str, step: int, marker: str, hook: str = "train_batch_end",
                 to_parent: bool = False) -> None:  # fmt: skip
        self.signal, self.step, self.hook = getattr(signals, signal), step, hook
        self.marker, self.to_parent = Path(marker), to_parent

    def _fire(self, trainer: L.Trainer, hook: str) -> None:
        if hook == self.hook and trainer.global_step >= self.step and not self.marker.exists():
            self.marker.touch()
            os.kill(os.getppid() if self.to_parent else os.getpid(), self.signal)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._fire(trainer, "train_batch_end")

    def on_validation_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if not trainer.sanity_checking:
            self._fire(trainer, "validation_batch_end")

    def on_train_epoch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._fire(trainer, "train_epoch_end")

    def on_test_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._fire(trainer, "test_batch_end")


class SignalWhenMade(L.Callback):
    """Send `signal` to this process as it is made, once per `marker` file: a Ctrl-C in a run's
    set-up. The checks make the callbacks first, the run again once its directory is written:
    `after` (a file) holds it back until that file exists."""

    def __init__(self, signal: str, marker: str, after: str | None = None) -> None:
        if (after is None or Path(after).exists()) and not Path(marker).exists():
            Path(marker).touch()
            os.kill(os.getpid(), getattr(signals, signal))


class LoaderPosition(L.Callback):
    """Fails the run unless, at every training batch end, the training loader's saved state
    points at the next batch (what a checkpoint saved there must resume from): Lightning's
    one-batch prefetch would make it one ahead."""

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        state = trainer.train_dataloader.state_dict()
        assert state == {"epoch": trainer.current_epoch, "next_batch": batch_idx + 1}, (
            state,
            batch_idx,
        )


class Pause(L.Callback):
    """Sleep `seconds` after every training batch: a run slow enough to be killed from outside
    at a chosen step (the chaos test), computing exactly what it would without the pause."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        import time

        time.sleep(self.seconds)


class HookCounter(L.Callback):
    """Counts its own training batch ends, and at the end of training records, for every callback
    of the run, the per-batch hooks Lightning will not call (set to None on the instance)."""

    counted: int = 0
    skipped: dict[str, list[str]] = {}  # noqa: RUF012 (read by the test after the run)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        HookCounter.counted += 1

    def on_train_end(self, trainer: L.Trainer, *args: Any) -> None:
        from harness.run.build import PER_BATCH

        HookCounter.skipped = {
            type(cb).__name__: [h for h in PER_BATCH if getattr(cb, h) is None]
            for cb in trainer.callbacks
        }
