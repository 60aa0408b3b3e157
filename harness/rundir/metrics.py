"""RUN_DIR/metrics.csv, read: the only reader of the file Lightning's CSV logger writes
(harness.tracking.csv): one row per logging call, columns `epoch`, `step` and the metric names,
empty where a row did not log that metric.

A row is also a key, (step, the metric names logged at it): a run resumed from a checkpoint
replays the steps between that checkpoint and the kill, and `Replayed` lets each logger skip the
rows it already holds.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.rundir.atomic import write_text_atomic
from harness.rundir.layout import METRICS_FILE

TIME = "perf/train_s"  # logged with the score after each validation: seconds of training so far

Row = tuple[int, frozenset[str]]


def read_metrics(
    path: Path, *, cut_torn_line: bool = False
) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the complete rows of a metrics.csv ([], [] when there is none). A last
    line cut short (by a kill, or read while the run writes it) is left out; with cut_torn_line
    it is also cut from the file, for a writer about to append to it."""
    try:
        text = Path(path).read_text()
    except OSError:
        return [], []
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
        if cut_torn_line:
            write_text_atomic(Path(path), text)
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), list(reader)


def read_history(run_dir: Path) -> list[dict[str, float]]:
    """A run's rows as {name: number}, empty cells left out, in file order."""
    rows = []
    for raw in read_metrics(Path(run_dir) / METRICS_FILE)[1]:
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


def logged_rows(path: Path) -> Counter[Row]:
    """How many times each (step, metric names) row appears in a metrics.csv (a torn last line
    is cut from the file: the run resumes appending to it)."""
    _, rows = read_metrics(path, cut_torn_line=True)
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
