"""What became of a run, from its results.json and exit status (train.py's contract: 0 finished,
3 diverged, 2 bad config or data, 130 interrupted, anything else a crash)."""

from __future__ import annotations

import json
from pathlib import Path

EXIT_STATES = {0: "finished", 3: "diverged", 130: "interrupted"}
RESULT_STATES = ("finished", "diverged", "failed", "interrupted")


def read_status(run_dir: Path) -> str | None:
    try:
        status = json.loads((run_dir / "results.json").read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return None
    return status if status in RESULT_STATES else None


def outcome(run_dir: Path, exit_code: int, stopped: bool) -> str:
    """finished | diverged | stopped | failed | interrupted.

    A run the runner stopped (hyperband) is `stopped` whatever it wrote. Otherwise the exit status
    decides, and results.json only when the two agree that training ended: a run that exited 0
    without writing `finished` did not finish."""
    if stopped:
        return "stopped"
    status = read_status(run_dir)
    by_exit = EXIT_STATES.get(exit_code, "failed")
    if exit_code < 0:  # killed by a signal: SIGINT/SIGTERM/SIGKILL from outside the runner
        return "interrupted"
    if by_exit == "finished" and status != "finished":
        return "failed"
    return by_exit


def finished_state(run_dir: Path) -> str | None:
    """finished or diverged when results.json says the run ended so, else None: for a run whose
    runner died after the run ended but before it recorded the exit status."""
    status = read_status(run_dir)
    return status if status in ("finished", "diverged") else None
