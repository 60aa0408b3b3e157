"""One run of a sweep as a child process: started with its output in a log file, and tied to the
runner so that it never outlives it (a runner killed with SIGKILL takes its runs down too)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOG_FILE = "output.log"  # the run's stdout and stderr, beside its results


def _die_with_parent(parent: int) -> None:
    """Linux: deliver SIGTERM to this child when the runner dies, however it dies (also if it
    died between the fork and this call: the child then has another parent)."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(130)


def run_env(threads: int) -> dict[str, str]:
    """A run's environment: the runner's, with these defaults."""
    env = dict(os.environ)
    # runs side by side share the cores: torch would give each run all of them (oversubscribed)
    env.setdefault("OMP_NUM_THREADS", str(threads))
    env.setdefault("WANDB_MODE", "offline")  # no W&B server here: upload later with wandb sync
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class Child(subprocess.Popen):
    """A run's process. `fileno()`: a descriptor readable once it has exited (a pidfd, Linux),
    which the runner sleeps on; None where there is none (the runner then polls)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):  # not Linux, or pidfds forbidden
            self.pidfd = os.pidfd_open(self.pid)

    def fileno(self) -> int | None:
        return self.pidfd

    def poll(self) -> int | None:
        return self._closed(super().poll())

    def wait(self, timeout: float | None = None) -> int:
        return self._closed(super().wait(timeout))

    def _closed(self, code: int | None) -> int | None:
        if code is not None and self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        return code


def wait_any(jobs: Any, timeout: float) -> None:
    """Return once one of these runs may have ended, or after `timeout` s (all of it if one of them
    cannot be watched, or none runs: a Slurm job has no descriptor, and is polled)."""
    jobs = list(jobs)
    if any(job.proc.returncode is not None for job in jobs):  # seen ended, not yet collected
        return
    fds = {job.proc.fileno() if hasattr(job.proc, "fileno") else None for job in jobs}
    if None in fds or not fds:
        time.sleep(timeout)
    else:
        select.select(list(fds), [], [], timeout)


@dataclass
class Job:
    key: str
    params: dict[str, Any]
    run_dir: Path
    proc: subprocess.Popen  # or a forked run's stand-in with the same methods (workers.Forked)
    started: float = field(default_factory=time.time)  # when it was asked to start (s, epoch)
    stop_sent: float | None = None  # when the runner asked it to stop (hyperband)


def start(
    key: str,
    params: dict[str, Any],
    argv: list[str],
    run_dir: Path,
    cwd: Path,
    threads: int,
    keep: int | None = None,
) -> Job:
    """Start the run. `keep`: a lock's descriptor the child inherits, so that the run stays
    locked until the child has exited, even if the runner dies first."""
    asked = time.time()
    run_dir.mkdir(parents=True, exist_ok=True)
    parent = os.getpid()
    with open(run_dir / LOG_FILE, "wb") as log:
        # Called from the main thread only: PDEATHSIG fires when the thread that forked exits.
        proc = Child(
            argv, cwd=cwd, env=run_env(threads), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, preexec_fn=lambda: _die_with_parent(parent),
            pass_fds=() if keep is None else (keep,),
        )  # fmt: skip
    return Job(key, params, run_dir, proc, started=asked)


def stop(job: Job, kill_after_s: float = 30.0) -> None:
    """SIGTERM (Lightning stops at the next step and the run writes its results), then SIGKILL if
    it has not exited `kill_after_s` later, as `wandb agent` does."""
    now = time.time()
    if job.stop_sent is None:
        job.stop_sent = now
        _signal(job, signal.SIGTERM)
    elif now - job.stop_sent > kill_after_s:
        _signal(job, signal.SIGKILL)


def _signal(job: Job, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        job.proc.send_signal(signum)


def tail(run_dir: Path, lines: int = 3) -> str:
    """The last lines a run printed: why it failed, for the summary."""
    try:
        text = (run_dir / LOG_FILE).read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])
