"""Training speed and peak memory, logged on the steps Lightning logs.

Logged names:
  perf/samples_per_s   training samples per second over all devices, since the last log;
                       counts the time from one training batch's end to the next (data, forward,
                       backward, optimizer), not validation, checkpointing or epoch boundaries
                       (after those, a batch counts from its own start: every logging step has
                       a rate, so a resumed run logs the same columns as an uninterrupted one)
  perf/peak_rss_mb     the process's peak resident memory (host RAM), MiB
  perf/peak_cuda_mb    peak memory allocated by torch on this CUDA device, MiB (GPU runs only)

No device synchronisation: on a GPU the host may run a few steps ahead of the device, so a rate
is exact only averaged over many steps (raise trainer.log_every_n_steps for steadier figures).
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities.data import extract_batch_size

from diagnostics.logged import RowLogger
from lightning_modules.base import is_logging_step

MIB = 2**20


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS: bytes; Linux: KiB


class Throughput(RowLogger):
    def __init__(self) -> None:
        super().__init__()
        self._last_end: float | None = None  # perf_counter() at the end of the previous batch
        self._seconds = 0.0
        self._samples = 0

    def _break_chain(self, *args: Any) -> None:
        self._last_end = None  # the next batch's time would include whatever ran in between

    on_train_epoch_start = _break_chain
    on_validation_start = _break_chain

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self.write_row(trainer)
        if self._last_end is None:
            self._last_end = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        now = time.perf_counter()
        self._seconds += now - self._last_end
        self._samples += extract_batch_size(batch) * trainer.world_size
        self._last_end = now
        if not is_logging_step(trainer):
            return
        values = {}
        if self._seconds > 0:
            values["perf/samples_per_s"] = self._samples / self._seconds
            self._seconds, self._samples = 0.0, 0
        values["perf/peak_rss_mb"] = peak_rss_bytes() / MIB
        device = pl_module.device
        if device.type == "cuda":
            values["perf/peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / MIB
        self.log_row(trainer, values)  # one row (diagnostics.logged)
