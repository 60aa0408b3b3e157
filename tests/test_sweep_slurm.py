"""The sweep runner's runs as submitit jobs, with submitit's local executor standing in for
SLURM: a job runs the run's command in its run directory and reports train.py's exit status;
SIGTERM (hyperband's stop) reaches train.py through submitit and the run ends with its results."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import pytest

from harness.sweep import slurm
from harness.sweep.outcome import outcome
from tests.conftest import FAST, ROOT

pytestmark = pytest.mark.slow


def argv(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "train.py", *FAST, "data=digits", "model=mlp",
            f"hydra.run.dir={run_dir}", *extra]  # fmt: skip


def wait(run, timeout: float = 300) -> int:
    deadline = time.time() + timeout
    while run.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    assert run.returncode is not None, "the job did not end"
    return run.returncode


def test_a_run_as_a_job_finishes_with_its_results(tmp_path: Path) -> None:
    ex = slurm.executor(tmp_path / "jobs", "local", {"timeout_min": 10})
    run_dir = tmp_path / "runs" / "a"
    job = slurm.start(ex, "a", {}, argv(run_dir), run_dir, ROOT, threads=1)
    assert job.proc.pid  # the job id, for the ledger
    assert wait(job.proc) == 0
    assert json.loads((run_dir / "results.json").read_text())["status"] == "finished"
    assert (run_dir / "output.log").stat().st_size > 0
    assert outcome(run_dir, job.proc.returncode, stopped=False) == "finished"


def test_sigterm_through_submitit_stops_the_run_cleanly(tmp_path: Path) -> None:
    ex = slurm.executor(tmp_path / "jobs", "local", {"timeout_min": 10})
    run_dir = tmp_path / "runs" / "b"
    long = argv(run_dir, "trainer.max_steps=100000", "checkpoint_every_n_steps=5")
    job = slurm.start(ex, "b", {}, long, run_dir, ROOT, threads=1)
    deadline = time.time() + 300
    while not (run_dir / "checkpoints" / "last.ckpt").exists() and time.time() < deadline:
        time.sleep(0.2)
    job.proc.send_signal(signal.SIGTERM)  # as the runner's hyperband stop does
    assert wait(job.proc) == 130
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "interrupted" and 5 <= results["steps"] < 100000
    assert outcome(run_dir, 130, stopped=True) == "stopped"
