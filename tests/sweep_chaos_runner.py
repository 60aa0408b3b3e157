"""`sweep.py run` with one window held open for a kill (tests/test_sweep_chaos.py): the runner's
code is patched here, so the harness carries no test hooks.

$CHAOS_WINDOW: launched (a child started or forked, not yet in the ledger), before-append / after-append
(either side of a ledger line), exited (a child exited, its end not yet recorded); its
$CHAOS_SKIP-th occurrence writes "WINDOW PID" to $CHAOS_TRACE and sleeps $CHAOS_PAUSE_S.
(`ckpt`, a child mid-checkpoint, is the stand-in's own: tests/sweep_standin.py.)
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's harness
from harness.sweep import ledger, process, runner, workers
from harness.sweep.main import main

WINDOW = os.environ.get("CHAOS_WINDOW", "")
seen = {"n": 0}


def pause(window: str) -> None:
    if window != WINDOW:
        return
    seen["n"] += 1
    if seen["n"] - 1 == int(os.environ.get("CHAOS_SKIP", "0")):
        with open(os.environ["CHAOS_TRACE"], "a") as f:
            f.write(f"{window} {os.getpid()}\n")
        time.sleep(float(os.environ.get("CHAOS_PAUSE_S", "5")))


def wrap(fn, before: str | None = None, after: str | None = None):
    def wrapped(*args, **kwargs):
        if before:
            pause(before)
        result = fn(*args, **kwargs)
        if after:
            pause(after)
        return result

    return wrapped


ledger.Ledger.record = wrap(ledger.Ledger.record, "before-append", "after-append")
process.start = wrap(process.start, after="launched")  # --workers process
workers.Workers.start = wrap(workers.Workers.start, after="launched")  # --workers fork (default)
workers.PRELOAD = ()  # the stand-in imports nothing heavy: a fork server that starts at once
runner.outcome = wrap(runner.outcome, before="exited")
sys.exit(main(sys.argv[1:]))
