"""Callbacks the benchmarks add to a harness run (through the callbacks config group)."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import lightning as L

from benchmarks.common import FIRST_STEP, sync


class StepTimer(L.Callback):
    """(wall clock, this process's CPU time) at the end of step `warmup` and of the last step (the
    device synchronised there only, so the timed steps run as they would)."""

    marks: ClassVar[list[tuple[float, float]]] = []  # read by the benchmark after the run

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step in (self.warmup, trainer.max_steps):
            sync()
            StepTimer.marks.append((time.perf_counter(), time.process_time()))


class PrintFirstStep(L.Callback):
    """Prints the wall clock when the first training step starts (read by benchmarks/startup)."""

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step == 0:
            print(f"{FIRST_STEP}{time.time()}", flush=True)
