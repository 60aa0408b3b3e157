"""OS file locks on directories: one process at a time in a run directory, one runner per run of a
sweep.

flock(2) on a lock file that stays once its holders let go: deleting it could let one process
lock a new file while another, which had opened the old one, locks that; a holder cannot know
that no copy of its descriptor lives on (a child's), and on a disk shared over NFS the path's
check below may read a cached name. The one removal, of a run directory whose run never started
(harness.run.app), is made by the holder before it lets go, and `take` checks that the file it
locked is still the one at the path (a process that opened the removed one then tries again).
The kernel releases a lock when the last descriptor of it closes, so a killed process never
leaves a stale lock, only the file; a descriptor a child inherits (subprocess's pass_fds) keeps
the lock until the child has exited too. The file holds the PID of the process that took the
lock, for the message a second gets.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError

LOCK_FILE = ".lock"
PID_WAIT_S = 0.5  # a holder writes its PID just after taking the lock: how long to wait for it


class InUse(ConfigError):
    """The lock is held by another process (pid, when it could be read)."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


@dataclass
class Lock:
    path: Path
    fd: int  # open while held; pass it to a child (pass_fds) to keep the lock until it exits

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # the kernel drops the lock with the last descriptor
            self.fd = -1


def take(
    folder: str | Path, what: str, *, hint: str = "", name: str = LOCK_FILE, wait: bool = False
) -> Lock:
    """Lock `folder` (made if missing) through folder/name; `wait` blocks until it is free.
    Held by another process: InUse, one line naming `what`, the folder and the holder's PID."""
    folder = Path(folder)
    path = folder / name
    while True:
        folder.mkdir(parents=True, exist_ok=True)
        try:  # the file stays after the lock is let go (module doc): never deleted to tidy up
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:  # its holder removed the folder between mkdir and open
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            by = f"process {pid}" if pid else "another process"
            raise InUse(
                f"{what} {folder} is in use by {by}{'; ' + hint if hint else ''}", pid
            ) from None
        except BaseException:
            os.close(fd)
            raise
        if _is_at(fd, path):
            break
        os.close(fd)  # locked a file its holder removed before letting go: lock the one there now
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return Lock(path, fd)


@contextlib.contextmanager
def hold(
    folder: str | Path, what: str, *, hint: str = "", name: str = LOCK_FILE, wait: bool = False
) -> Iterator[Lock]:
    """`with hold(run_dir, "run directory"):` the body runs with the folder locked (see take)."""
    lock = take(folder, what, hint=hint, name=name, wait=wait)
    try:
        yield lock
    finally:
        lock.release()


def refuse_if_held(folder: str | Path, what: str, *, hint: str = "", name: str = LOCK_FILE) -> None:
    """InUse (as take's) if another process holds folder's lock; writes nothing: a shared lock
    on the lock file, if there is one, tried and dropped at once."""
    path = Path(folder) / name
    if not path.is_file():
        return
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _holder(fd)
        by = f"process {pid}" if pid else "another process"
        raise InUse(
            f"{what} {folder} is in use by {by}{'; ' + hint if hint else ''}", pid
        ) from None
    finally:
        os.close(fd)


def _is_at(fd: int, path: Path) -> bool:
    """Whether `path` still names the file open as `fd`."""
    try:
        at = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (at.st_dev, at.st_ino) == (held.st_dev, held.st_ino)


def _holder(fd: int) -> int | None:
    deadline = time.monotonic() + PID_WAIT_S
    while True:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text.isdigit() or time.monotonic() > deadline:
            return int(text) if text.isdigit() else None
        time.sleep(0.01)
