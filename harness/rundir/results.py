"""results.json: what a sweep, a report or a person reads first about a finished run.

Metric keys are the logged names ("val/acc", "test/acc", ...): the last value of each, with test
metrics measured on the best checkpoint. "best" holds the validation metrics at the best
validation check (by task.monitor), so a run can be ranked without reading metrics.csv.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.rundir.atomic import write_text_atomic
from harness.rundir.layout import RESULT_STATES, RESULTS_FILE


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
