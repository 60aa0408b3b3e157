"""The fork server of warm workers (`sweep.py run --workers fork`, started by harness.sweep.workers):
it imports torch, Lightning, W&B, Hydra and the harness once (and composes each set of group choices
of a train.py run once: compose_for), then forks one child per run. Each
child makes itself what `python PROGRAM ARGS` would be (its own log, environment, signals, working
directory, lock) and runs PROGRAM as __main__ (train.py: run_command); the server reports its exit.

    python -m harness.sweep.fork_server FD MODULE...   (FD: a SOCK_SEQPACKET socket to the runner)

What must not cross a fork, and how it stays out: threads (none may run here when it forks,
unsafe_to_fork; numpy's OpenBLAS pools stop at every fork by their own atfork handler, so one fork
at start-up stops them), CUDA (never initialised here; the runner starts GPU runs as processes),
W&B's service (each run starts its own, as train.py does), and W&B's import-time temporary
directories (the server's: a run leaving must not remove them). Nothing here runs a torch op.
"""

from __future__ import annotations

import array
import atexit
import contextlib
import gc
import importlib
import json
import os
import runpy
import select
import signal
import socket
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

from harness.sweep.process import LOG_FILE, _die_with_parent

MAX_MESSAGE = 1 << 20  # bytes: a request holds an argv and an environment
# read once, when a library loads (OpenBLAS, OpenMP, MKL size their pools): a run whose values
# differ from the server's would not get what it asked for, so it starts as its own process
AT_IMPORT = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES")


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] = ()) -> None:
    socket.send_fds(sock, [json.dumps(message).encode()], list(fds))


def receive(sock: socket.socket, size: int, flags: int = 0) -> tuple[bytes, list[int]]:
    """One message and the descriptors sent with it (socket.recv_fds drops `flags` in 3.11)."""
    fds = array.array("i")
    data, ancillary, _, _ = sock.recvmsg(size, socket.CMSG_LEN(4 * fds.itemsize), flags)
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    return data, list(fds)


def unsafe_to_fork() -> str | None:
    """Why this process must not fork now (a thread would be copied half-way), else None."""
    if threading.active_count() > 1:
        return f"{threading.active_count() - 1} Python thread(s) run in the fork server"
    tasks = len(os.listdir("/proc/self/task"))
    if tasks > 1:
        return f"{tasks - 1} native thread(s) run in the fork server"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "CUDA is initialised in the fork server"
    return None


# What a fresh `python train.py` started by the runner would have for SIGINT: Python's own
# KeyboardInterrupt handler, unless SIGINT came ignored (a job started in the background by a
# shell without job control), which Python and its children then keep.
RUN_SIGINT: Any = signal.default_int_handler


def main(argv: list[str]) -> int:
    global RUN_SIGINT
    sock = socket.socket(fileno=int(argv[0]))
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        RUN_SIGINT = signal.SIG_IGN
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the runs; the runner ends this
    with warnings.catch_warnings():  # each run would say them: the server has no log
        warnings.simplefilter("ignore")
        for name in argv[1:]:
            with contextlib.suppress(Exception):  # a run that needs it fails as a process would
                importlib.import_module(name)
        if "harness.config.compose" in sys.modules:  # Hydra's plugin scan, OmegaConf's caches
            sys.modules["harness.config.compose"].keep_compositions()
            compose_for(TRAIN, [])  # the defaults' composition
    # type(), not isinstance(): that would read __class__ of lazy module proxies (torch warns)
    temps = [o for o in gc.get_objects() if type(o) is tempfile.TemporaryDirectory]
    gc.collect()
    gc.freeze()  # a run's garbage collections skip the server's objects: no page copied for them
    pid = os.fork()  # OpenBLAS's atfork handler stops the pools numpy's import started
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    reason = unsafe_to_fork()
    send(sock, {"unusable": reason} if reason else {"ready": True})
    if reason:
        return 1
    with contextlib.suppress(OSError):  # OSError: the runner is gone (its runs get SIGTERM)
        serve(sock, temps)
    return 0


def serve(sock: socket.socket, temps: list[tempfile.TemporaryDirectory]) -> None:
    """Fork a child per request; report each child's exit status as Popen.returncode says it."""
    children: dict[int, int] = {}  # pidfd -> pid
    while True:
        ready, _, _ = select.select([sock, *children], [], [])
        for fd in ready:
            if fd in children:
                pid = children.pop(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                send(sock, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})
                continue
            data, fds = receive(sock, MAX_MESSAGE)
            if not data:
                return  # the runner closed its end
            request = json.loads(data)
            reason = unsafe_to_fork() or _env_differs(request["env"])
            if reason:
                send(sock, {"refused": reason})
            else:
                program, *args = request["argv"]
                compose_for(os.path.join(request["cwd"], program), args)
                parent = os.getpid()
                pid = os.fork()
                if pid == 0:
                    code = 1
                    try:
                        code = child(request, parent, [sock.fileno(), *children], temps)
                    finally:
                        os._exit(code)
                pidfd = os.pidfd_open(pid)  # the runner signals through it: never a reused PID
                children[pidfd] = pid
                send(sock, {"started": pid}, [pidfd])
            for fd_ in fds:  # the run's lock: held by the child alone from now on
                os.close(fd_)


TRAIN = str(Path(__file__).resolve().parents[2] / "train.py")


def compose_for(program: str, args: list[str]) -> None:
    """Compose here, once for each set of group choices, the config of a train.py run: its child
    (and every later one) then applies only its values (harness.config.compose keeps the
    compositions, while conf/ is unchanged). Hydra's composition runs no torch op and starts no
    thread. A composition that fails is the child's to report."""
    composer = sys.modules.get("harness.config.compose")
    if composer is None or os.path.realpath(program) != TRAIN:
        return
    with warnings.catch_warnings(), contextlib.suppress(Exception):
        warnings.simplefilter("ignore")
        composer.compose_with_defaults(args)


def _env_differs(env: dict[str, str]) -> str | None:
    for name in AT_IMPORT:
        if env.get(name) != os.environ.get(name):
            return f"the run's {name} ({env.get(name)}) is not the fork server's"
    return None


def child(request: dict[str, Any], parent: int, close: list[int], temps: list) -> int:
    """In the forked child: become the run's own process, then run its program."""
    _die_with_parent(parent)  # SIGTERM when the server dies (it dies with the runner)
    signal.signal(signal.SIGINT, RUN_SIGINT)
    for fd in close:
        os.close(fd)
    log = os.open(Path(request["run_dir"]) / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    null = os.open(os.devnull, os.O_RDONLY)
    for fd, target in ((null, 0), (log, 1), (log, 2)):
        os.dup2(fd, target)
    os.close(null)
    os.close(log)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    torch = sys.modules.get("torch")
    if torch is not None and os.environ.get("OMP_NUM_THREADS", "").isdigit():
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))  # as a fresh process sizes it
    for temp in temps:  # the server's to remove, when it exits
        finalizer = getattr(temp, "_finalizer", None)
        if finalizer is not None:
            finalizer.detach()
        atexit.unregister(temp.cleanup)
    program, *args = request["argv"]
    sys.argv = [program, *args]
    sys.path[0] = os.path.dirname(os.path.abspath(program))
    return run_program(program)


def run_program(program: str) -> int:
    """Run `program` as __main__ and end as the interpreter would: the exit status, the
    traceback of an uncaught exception, non-daemon threads joined, atexit handlers run."""
    path = os.path.abspath(program)
    if not os.path.isfile(path):
        print(f"{sys.executable}: can't open file {path!r}: [Errno 2] No such file or directory",
              file=sys.stderr)  # fmt: skip
        return 2
    code = 0
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as e:
        code = _exit_code(e.code)
    except BaseException as e:  # uncaught: as the interpreter ends on it
        sys.excepthook(type(e), e, e.__traceback__)
        code = -signal.SIGINT if isinstance(e, KeyboardInterrupt) else 1
    threading._shutdown()  # what Py_Finalize does first: join the non-daemon threads
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    if code == -signal.SIGINT:  # Python ends on an uncaught KeyboardInterrupt by SIGINT
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        return 130
    return code


def _exit_code(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)  # sys.exit("message"): printed, status 1
    return 1


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # What ending the interpreter would do that matters (atexit: the temporary directories the
    # imports made, W&B's), without tearing down every module of torch and Lightning (~0.4 s, at
    # the end of each sweep)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
