"""What became of a run, from its results.json and exit status (train.py's contract, the table in
harness.rundir.files: 0 finished, 3 diverged, 2 bad config or data, 130 interrupted, anything
else a crash)."""

from __future__ import annotations

from pathlib import Path

from harness.rundir.files import read_status, status_of_exit


def outcome(run_dir: Path, exit_code: int, stopped: bool) -> str:
    """finished | diverged | stopped | failed | interrupted.

    A run the runner stopped (hyperband) is `stopped` whatever it wrote. Otherwise the exit status
    decides, and results.json only when the two agree that training ended: a run that exited 0
    without writing `finished` did not finish."""
    if stopped:
        return "stopped"
    by_exit = status_of_exit(exit_code)  # killed by a signal from outside the runner: interrupted
    if by_exit == "finished" and read_status(run_dir) != "finished":
        return "failed"
    return by_exit


def finished_state(run_dir: Path) -> str | None:
    """finished or diverged when results.json says the run ended so, else None: for a run whose
    runner died after the run ended but before it recorded the exit status."""
    status = read_status(run_dir)
    return status if status in ("finished", "diverged") else None
