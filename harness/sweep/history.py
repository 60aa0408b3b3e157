"""A run's logged history from its metrics.csv (Lightning's CSVLogger: one row per logging call,
columns `epoch`, `step` and the metric names, empty where a row did not log that metric)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

METRICS_FILE = "metrics.csv"
TIME = "perf/train_s"  # logged with the score after each validation: seconds of training so far


def read_history(run_dir: Path) -> list[dict[str, float]]:
    """Rows as {name: number}, empty cells left out, in file order ([] when there is no file).
    Read while the run writes it: a torn last row is skipped."""
    path = Path(run_dir) / METRICS_FILE
    try:
        text = path.read_text()
    except OSError:
        return []
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines = lines[:-1]
    rows = []
    for raw in csv.DictReader(lines):
        row = {}
        for name, cell in raw.items():
            if name is None or cell in (None, ""):
                continue
            try:
                row[name] = float(cell)
            except ValueError:
                continue
        if row:
            rows.append(row)
    return rows


def series(history: list[dict[str, float]], metric: str) -> list[tuple[int, float]]:
    """(step, value) of every row that logged `metric`; NaN and inf kept (a diverged run)."""
    return [(int(r.get("step", i)), r[metric]) for i, r in enumerate(history) if metric in r]


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)
