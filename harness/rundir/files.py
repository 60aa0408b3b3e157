"""The files of a run directory, in one module: their names, what a run's exit status says, and
the readers and writers of results.json and metrics.csv; every file a run writes here is whole.

RUN_DIR/.hydra/{config,hydra,overrides}.yaml   the composed config, as the run started
RUN_DIR/train.log                              the run's log lines
RUN_DIR/metrics.csv                            one row per logging call (read_metrics below)
RUN_DIR/results.json                           status, final and best metrics (write_results below)
RUN_DIR/checkpoints/{best,last}.ckpt           best by task.monitor; last for resuming
RUN_DIR/checkpoints/wandb_id.txt               the W&B run a resumed run logs to
RUN_DIR/wandb/                                 W&B's files (offline runs: upload with wandb sync)

results.json is what a sweep, a report or a person reads first about a finished run. Its metric
keys are the logged names ("val/acc", "test/acc", ...): the last value of each, with test metrics
measured on the best checkpoint. "best" holds the validation metrics at the best validation check
(by task.monitor), so a run can be ranked without reading metrics.csv.

metrics.csv is written by Lightning's CSV logger (harness.tracking.loggers.RunCSVLogger): one row per logging call,
columns `epoch`, `step` and the metric names, empty where a row did not log that metric. A row is
also a key, (step, the metric names logged at it): a run resumed from a checkpoint replays the
steps between that checkpoint and the kill, and `Replayed` lets each logger skip the rows it
already holds.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# --- names and exit statuses ---

HYDRA_DIR = ".hydra"
LOG_FILE = "train.log"
METRICS_FILE = "metrics.csv"
RESULTS_FILE = "results.json"
CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"
WANDB_ID_FILE = "wandb_id.txt"

# results.json "status" -> train.py's exit status. A bad config or missing data exits with
# BAD_INPUT before any results.json is written; any other exit status is a crash ("failed").
EXIT_STATUS = {"finished": 0, "failed": 1, "diverged": 3, "interrupted": 130}
BAD_INPUT = 2
RESULT_STATES = tuple(EXIT_STATUS)


def status_of_exit(code: int) -> str:
    """The status an exit code says the run ended with (a signal from outside: interrupted)."""
    if code < 0:
        return "interrupted"
    return {v: k for k, v in EXIT_STATUS.items() if k != "failed"}.get(code, "failed")


# --- always whole ---


def write_text_atomic(path: Path, text: str) -> None:
    """A reader (or a kill) sees the old file or the new one, never half of either. The temporary
    name is this process's own (two writers never share one), and a failed write (a full disk)
    leaves no temporary file behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())  # on disk before its name says it is whole
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


# --- results.json ---


def write_results(run_dir: Path, results: dict[str, Any]) -> Path:
    """Write atomically: a reader never sees half a file."""
    path = Path(run_dir) / RESULTS_FILE
    write_text_atomic(path, json.dumps(results, indent=2, sort_keys=True) + "\n")
    return path


def read_results(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / RESULTS_FILE).read_text())


def read_status(run_dir: Path) -> str | None:
    """The status results.json records (finished, diverged, failed, interrupted); None when
    there is no readable results.json."""
    try:
        status = read_results(run_dir).get("status")
    except (OSError, ValueError, AttributeError):
        return None
    return status if status in RESULT_STATES else None


# --- metrics.csv ---

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
