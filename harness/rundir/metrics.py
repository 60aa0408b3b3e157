"""metrics.csv that survives a kill and a resume, and the rule that keeps any logger from
recording a row twice.

A row is one log call: a step and the metric names logged at it (train/loss at step 41, the val/
metrics at step 80...). Every row is written to disk as soon as it is logged, so a killed run has
lost none. A run resumed from a checkpoint replays the steps between that checkpoint and the kill;
their rows are already in metrics.csv (and were sent to W&B), so both loggers skip them instead of
logging them again. On a CPU with a fixed seed the replayed values are the same numbers.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

METRICS_FILE = "metrics.csv"
Row = tuple[int, frozenset[str]]


def read_metrics(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the complete rows of a metrics.csv; a last line cut short by a kill is
    dropped (and the file rewritten without it)."""
    if not path.is_file():
        return [], []
    text = path.read_text()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
        _replace(path, text)
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), list(reader)


def logged_rows(path: Path) -> Counter[Row]:
    """How many times each (step, metric names) row appears in a metrics.csv."""
    _, rows = read_metrics(path)
    return Counter(
        (int(r["step"]), frozenset(k for k, v in r.items() if v not in ("", None) and k != "step"))
        for r in rows
    )


class Replayed:
    """The rows an earlier attempt of this run logged; `skip` consumes one match per call."""

    def __init__(self, rows: Counter[Row] | None = None) -> None:
        self.rows = Counter(rows or {})

    def skip(self, step: int | None, metrics: Mapping[str, Any]) -> bool:
        key = (step, frozenset(metrics))
        if step is None or self.rows[key] <= 0:
            return False
        self.rows[key] -= 1
        return True


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class _Writer(ExperimentWriter):
    """Lightning's CSV writer, except that it keeps the rows of an earlier attempt (Lightning's
    deletes metrics.csv whenever the folder is not empty) and rewrites the file atomically when
    a new column appears."""

    def __init__(self, log_dir: str, replayed: Replayed | None) -> None:
        self.replayed = replayed
        super().__init__(log_dir)
        if replayed is not None:
            self.metrics_keys = read_metrics(Path(self.metrics_file_path))[0]

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if self.replayed is None and path.is_file():
            path.unlink()  # a fresh run: a file left by an attempt without a checkpoint goes

    def log_metrics(self, metrics_dict: dict[str, float], step: int | None = None) -> None:
        if self.replayed is not None and self.replayed.skip(step, metrics_dict):
            return
        super().log_metrics(metrics_dict, step)

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        _, rows = read_metrics(Path(self.metrics_file_path))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
        _replace(Path(self.metrics_file_path), out.getvalue())


class RunCSVLogger(CSVLogger):
    """RUN_DIR/metrics.csv, each row on disk as soon as it is logged. `replayed` (a resumed run):
    keep the file and skip the rows it already holds; None: start a new file."""

    def __init__(self, run_dir: str | Path, replayed: Replayed | None = None) -> None:
        super().__init__(save_dir=str(run_dir), name="", version="", flush_logs_every_n_steps=1)
        self._replayed = replayed

    @property
    @rank_zero_experiment
    def experiment(self) -> _Writer:
        if self._experiment is None:
            Path(self.log_dir).mkdir(parents=True, exist_ok=True)
            self._experiment = _Writer(self.log_dir, self._replayed)
        return self._experiment
