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


def test_a_run_refused_under_the_lock_removes_its_directory_before_it_lets_go(
    tmp_path: Path, monkeypatch
) -> None:
    """Refused by the check made again under the lock, a run takes away the directory it made, and
    only then lets the next process in: never that process's files, written the moment it got in."""
    from harness.errors import ConfigError
    from harness.run import app, resume
    from harness.rundir import lock as locks

    run_dir, checks, taken = tmp_path / "run", [], []

    def check_run_dir(folder: Path, cfg: object) -> None:
        checks.append(folder)
        if len(checks) == 2:  # under the lock: another process made the run unstartable meanwhile
            raise ConfigError(f"{folder} changed")

    real = locks.Lock.release

    def release(lock: locks.Lock) -> None:  # the next process takes it the moment it is free
        real(lock)
        if not taken:
            taken.append(locks.take(run_dir, "run directory"))
            (run_dir / ".hydra").mkdir(exist_ok=True)
            (run_dir / ".hydra" / "config.yaml").write_text("seed: 0\n")

    monkeypatch.setattr(resume, "check_run_dir", check_run_dir)
    monkeypatch.setattr(locks.Lock, "release", release)
    with pytest.raises(ConfigError, match="changed"):
        app.locked_run_dir(run_dir, None)
    monkeypatch.undo()
    try:
        assert (run_dir / ".hydra" / "config.yaml").read_text() == "seed: 0\n"
    finally:
        taken[0].release()
