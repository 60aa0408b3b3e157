"""Warm workers (`sweep.py run --workers fork`): runs forked from one fork server
(harness.sweep.fork_server) that imported torch, Lightning, W&B, Hydra and the harness once, so a
run skips the interpreter's start and those imports (7-10 s here) and still has its own process.

`Workers.start` has process.start's signature and returns the same Job; its `proc` (Forked)
answers as a subprocess.Popen does. A run that cannot be forked (a GPU run, a program that is not
a Python file run by this interpreter, a server that could not start or died) starts as its own
process, as with `--workers process`, and one line on stderr says why.

Over 250 lines: which runs may be forked, and the client side of the server's protocol, are one
decision each, kept beside the Job they return.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.sweep import process
from harness.sweep.fork_server import receive

ROOT = Path(__file__).resolve().parents[2]  # where `harness` imports from
# What the server imports: what a train.py run spends its first seconds importing (measured in a
# digits run: sklearn.datasets alone is 1.2 s, W&B's public API 0.6 s). One that fails to import
# is skipped: a run that needs it fails as a process would. Its top-level packages of this project
# (harness, models...) are the ones a forked program gets: one beside its own is not forked.
PRELOAD = ("torch", "lightning", "wandb", "wandb.apis.public", "wandb.sdk.launch.sweeps.utils",
           "hydra", "sklearn.datasets", "harness.run.app", "harness.config.command",
           "harness.run.recipe", "harness.run.build", "harness.run.callbacks",
           "harness.run.summary", "harness.run.console", "harness.run.checkpoint_io",
           "lightning_modules.classifier", "datamodules.digits", "models.cnn", "optim.optimizer")  # fmt: skip
NOT_CPU = ("gpu", "cuda", "mps", "tpu", "hpu")  # trainer.accelerator values that are not the CPU


def has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()  # this process never forks without exec: CUDA may load here


class Forked:
    """A forked run as the runner sees a subprocess.Popen: pid, returncode, poll, wait,
    send_signal, terminate, kill. Signals go through a pidfd (never to a reused PID); the exit
    status comes from the server, the run's parent."""

    def __init__(self, workers: Workers, pid: int, pidfd: int) -> None:
        self.workers, self.pid, self.pidfd = workers, pid, pidfd
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.workers.collect()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(f"run {self.pid}", timeout)
            self.workers.collect(min(left, 1.0))
        return self.returncode

    def fileno(self) -> int:
        """Readable once its exit may be known: the server's socket (it reports the exit), or the
        run's pidfd once the server is gone."""
        return self.workers.sock.fileno() if self.workers.sock is not None else self.pidfd

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # exited since: as Popen, nothing
                signal.pidfd_send_signal(self.pidfd, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def ended(self, code: int) -> None:
        self.returncode = code
        os.close(self.pidfd)


class Workers:
    def __init__(self, threads: int, preload: tuple[str, ...] | None = None) -> None:
        """`threads`: OMP_NUM_THREADS of the runs (as process.start gives them), which the
        server's libraries read as they load. Starts nothing: open() or the first start() does."""
        self.threads = threads
        self.preload = PRELOAD if preload is None else preload
        self.server: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.ready = False
        self.broken: str | None = None  # why no run is forked any more
        self.reply: dict[str, Any] | None = None
        self.runs: dict[int, Forked] = {}  # pid -> the runs that have not exited
        self.said: set[str] = set()

    def open(self) -> None:
        """Start the server; it imports while the runner checks the sweep's runs."""
        if self.server is not None or self.broken:
            return
        if not sys.platform.startswith("linux"):
            self.broken = "forking runs needs Linux (PR_SET_PDEATHSIG, pidfds)"
            return
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        parent = os.getpid()
        self.server = subprocess.Popen(
            [sys.executable, "-m", "harness.sweep.fork_server", str(theirs.fileno()), *self.preload],
            cwd=ROOT, env=process.run_env(self.threads), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, pass_fds=(theirs.fileno(),),
            preexec_fn=lambda: process._die_with_parent(parent),
        )  # fmt: skip
        theirs.close()
        self.sock = mine

    def close(self) -> None:
        """End the server (a run still going gets SIGTERM, as when the runner dies)."""
        if self.sock is not None and not self.ready:
            self.collect()  # a "ready" no run has read (none was started): it may end by itself
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.server is not None:
            if not self.ready and not self.broken:  # still importing: nothing to wait for
                self.server.kill()
            try:
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()

    def why_not(self, argv: list[str], cwd: Path = ROOT) -> str | None:
        """Why this run cannot be forked, else None."""
        rest = argv[1:] if argv[:1] == ["/usr/bin/env"] else argv
        python = rest[:1] and os.path.realpath(rest[0]) == os.path.realpath(sys.executable)
        if not python or len(rest) < 2 or rest[1].startswith("-"):
            return f"{' '.join(argv[:3])} is not a Python program run by {sys.executable}"
        home = Path(cwd, rest[1]).resolve().parent
        own = sorted(
            n for n in self._packages() if (home / n).is_dir() or (home / f"{n}.py").is_file()
        )
        if home != ROOT and own:  # as a process, the program would import its own
            return (f"{rest[1]} sits beside its own {', '.join(own)} ({home}), not the ones the "
                    "fork server imported")  # fmt: skip
        accelerator = "auto"
        for arg in rest[2:]:
            key, _, value = arg.partition("=")
            if key.lstrip("+") == "trainer.accelerator":
                accelerator = value
        if accelerator in NOT_CPU or (accelerator != "cpu" and has_gpu()):
            return (f"a run on a GPU (trainer.accelerator={accelerator}) is not forked: CUDA "
                    "must start in a process of its own")  # fmt: skip
        return None

    def _packages(self) -> set[str]:
        """The project's top-level packages the server imports (harness, models, ...)."""
        return {m.split(".")[0] for m in self.preload if (ROOT / m.split(".")[0]).is_dir()}

    def start(
        self, key: str, params: dict[str, Any], argv: list[str], run_dir: Path, cwd: Path,
        threads: int, keep: int | None = None,
    ) -> process.Job:  # fmt: skip
        """process.start's run, forked from the server when it can be."""
        reason = self.why_not(argv, cwd) or self._up()  # waits for the server's imports, once
        asked = time.time()  # the run's wall includes its fork (and the server's composition)
        if reason is None:
            run_dir.mkdir(parents=True, exist_ok=True)
            rest = argv[1:] if argv[:1] == ["/usr/bin/env"] else argv
            request = {"argv": rest[1:], "run_dir": str(run_dir), "cwd": str(cwd),
                       "env": process.run_env(threads)}  # fmt: skip
            reply, fds = self._ask(request, [] if keep is None else [keep])
            if "started" in reply:
                proc = Forked(self, reply["started"], fds[0])
                self.runs[proc.pid] = proc
                return process.Job(key, params, run_dir, proc, started=asked)  # type: ignore[arg-type]
            reason = reply["refused"]
        if reason not in self.said:
            self.said.add(reason)
            print(f"warm workers: {reason}; such runs start as their own processes", file=sys.stderr)  # fmt: skip
        return process.start(key, params, argv, run_dir, cwd, threads, keep=keep)

    def _up(self) -> str | None:
        """None once the server is ready (waiting for its imports), else why it is not."""
        self.open()
        while not self.ready and not self.broken:
            self.collect(1.0)
        return self.broken

    def _ask(self, request: dict[str, Any], fds: list[int]) -> tuple[dict[str, Any], list[int]]:
        try:
            socket.send_fds(self.sock, [json.dumps(request).encode()], fds)
        except OSError:
            self._lost()
        self.reply = None
        while self.reply is None and not self.broken:
            self.collect(1.0)
        return self.reply or ({"refused": self.broken}, [])

    def collect(self, timeout: float = 0.0) -> None:
        """Take in what the server said (runs that exited, replies), waiting up to `timeout`."""
        if self.sock is None or self.broken:
            self._orphans(timeout)
            return
        if not select.select([self.sock], [], [], timeout)[0]:
            return
        while self.sock is not None:
            try:
                data, fds = receive(self.sock, 4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._lost()
                return
            message = json.loads(data)
            if "exited" in message:
                run = self.runs.pop(message["exited"], None)
                if run is not None:
                    run.ended(message["code"])
            elif "ready" in message:
                self.ready = True
            elif "unusable" in message:
                self.broken = f"the fork server could not start: {message['unusable']}"
            else:
                self.reply = (message, fds)

    def _lost(self) -> None:
        """The server died: its runs got SIGTERM (PDEATHSIG); later runs start as processes."""
        code = self.server.wait(timeout=10) if self.server is not None else None
        self.broken = self.broken or f"the fork server exited (status {code})"
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _orphans(self, timeout: float) -> None:
        """Runs of a dead server: ended once their process is gone (status unknown: SIGTERM)."""
        pidfds = {run.pidfd: run for run in self.runs.values()}
        if not pidfds:
            time.sleep(min(timeout, 0.05))
            return
        for fd in select.select(list(pidfds), [], [], timeout)[0]:
            run = pidfds[fd]
            del self.runs[run.pid]
            run.ended(-signal.SIGTERM)
