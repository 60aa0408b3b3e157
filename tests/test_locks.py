"""OS file locks on directories (harness.rundir.lock): a second holder is refused with the first
one's PID, a killed holder leaves no stale lock, a child that inherits the lock keeps it, and a
lock file its holder removed is never locked by two processes at once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.rundir.lock import InUse, hold, take

HOLD = """
import sys, time
from harness.rundir.lock import take
take(sys.argv[1], "run directory")
print("held", flush=True)
time.sleep(60)
"""


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    with hold(tmp_path / "run", "run directory") as lock:
        with pytest.raises(InUse, match=rf"run directory .*run is in use by process {os.getpid()}; wait") as e:  # fmt: skip
            take(tmp_path / "run", "run directory", hint="wait for it to end")
        assert e.value.pid == os.getpid() and isinstance(e.value, ConfigError)
        assert "\n" not in str(e.value)
        assert lock.path == tmp_path / "run" / ".lock"
    take(tmp_path / "run", "run directory").release()  # released on leaving the block


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(InUse, match=f"process {holder.pid}"):
        take(tmp_path, "run directory")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    take(tmp_path, "run directory").release()


def test_a_child_that_inherits_the_lock_holds_it_until_it_exits(tmp_path: Path) -> None:
    lock = take(tmp_path, "run", name="k.lock")
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE, pass_fds=(lock.fd,))  # fmt: skip
    lock.release()  # the parent is done (or died): the child still holds it
    with pytest.raises(InUse):
        take(tmp_path, "run", name="k.lock")
    child.communicate(b"")
    take(tmp_path, "run", name="k.lock").release()


def test_a_lock_file_removed_by_its_holder_is_never_a_second_lock(
    tmp_path: Path, monkeypatch
) -> None:
    """A holder may remove its folder, lock file and all, before letting go (a run that never
    started: harness.run.app). A process that had opened the removed file by then must lock the
    one at the path, so that a third is refused."""
    from harness.rundir import lock as locks

    first = take(tmp_path / "run", "run directory")
    real = locks.fcntl.flock

    def flock(fd: int, operation: int) -> None:  # the second process, between its open and flock
        if first.fd >= 0 and fd != first.fd:
            shutil.rmtree(tmp_path / "run")  # the first removes its run directory, lets go
            first.release()
        real(fd, operation)

    monkeypatch.setattr(locks.fcntl, "flock", flock)
    second = take(tmp_path / "run", "run directory")
    monkeypatch.undo()
    try:
        with pytest.raises(InUse, match=f"process {os.getpid()}"):
            take(tmp_path / "run", "run directory")
    finally:
        second.release()
