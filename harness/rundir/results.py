"""results.json: what a sweep, a report or a person reads first about a finished run.

Metric keys are the logged names ("val/acc", "test/acc", ...): the last value of each, with test
metrics measured on the best checkpoint. "best" holds the validation metrics at the best
validation check (by task.monitor), so a run can be ranked without reading metrics.csv.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch

RESULTS_FILE = "results.json"
# results.json "status" -> train.py's exit status, for sweep runners (a bad config or missing
# data exits with 2 before any results.json is written).
EXIT_STATUS = {"finished": 0, "failed": 1, "diverged": 3, "interrupted": 130}


def as_number(value: Any) -> float | int | None:
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value if math.isfinite(value) else None  # JSON has no NaN
    return None


def metrics_of(trainer: L.Trainer) -> dict[str, float]:
    return {
        k: v
        for k, v in ((k, as_number(v)) for k, v in trainer.callback_metrics.items())
        if v is not None
    }


class BestMetrics(L.Callback):
    """Remembers every validation metric at the best value of `monitor` seen so far."""

    def __init__(self, monitor: str, mode: str) -> None:
        self.monitor, self.mode = monitor, mode
        self.best: dict[str, float] = {}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = as_number(trainer.callback_metrics.get(self.monitor))
        if value is None:
            return
        old = self.best.get(self.monitor)
        if old is None or (value > old if self.mode == "max" else value < old):
            self.best = {k: v for k, v in metrics_of(trainer).items() if k.startswith("val/")}
            self.best.update(epoch=trainer.current_epoch, step=trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        return {"best": dict(self.best)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = dict(state_dict.get("best", {}))


def write_results(run_dir: Path, results: dict[str, Any]) -> Path:
    """Write atomically: a reader never sees half a file."""
    path = run_dir / RESULTS_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def read_results(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / RESULTS_FILE).read_text())
