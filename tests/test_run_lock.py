"""train.py on a run directory another process uses: one line naming the holder's PID, exit 2,
and the directory as it was (issue 13, item 5, the train.py side)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.rundir.lock import hold
from tests.conftest import FAST, ROOT

ENV = {**os.environ, "WANDB_MODE": "disabled"}


def _train(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "train.py", "data=digits", *FAST, *extra, f"hydra.run.dir={run_dir}"]


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_train_py_on_a_locked_run_directory_is_one_line_naming_the_holder(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with hold(run_dir, "run directory"):  # as a runner or a train.py in it would
        before = _snapshot(run_dir)
        done = subprocess.run(_train(run_dir), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)  # fmt: skip
        after = _snapshot(run_dir)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"process {os.getpid()}" in lines[0], done.stderr
    assert after == before


@pytest.mark.slow
def test_a_second_train_py_on_a_run_directory_in_use_is_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = subprocess.Popen(_train(run_dir, "trainer.max_steps=400"), cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.time() + 300
        while not (run_dir / ".hydra" / "config.yaml").exists():  # it holds the lock by then
            assert first.poll() is None and time.time() < deadline, "the first run did not start"
            time.sleep(0.2)
        second = subprocess.run(_train(run_dir), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)  # fmt: skip
        assert first.poll() is None, "the first run ended before the second was refused"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert second.returncode == 2, second.stderr[-2000:]
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and f"process {first.pid}" in lines[0], second.stderr
