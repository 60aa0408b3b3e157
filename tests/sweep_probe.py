"""A program for the warm workers' tests (tests/test_sweep_workers.py): it writes what its process
looks like to RUN_DIR/probe.json, then ends as `probe.end=` says: exit:N, raise, segv,
interrupt (an uncaught KeyboardInterrupt), or sleep:S (then exit 0). Imports nothing heavy."""

import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

args = dict(a.split("=", 1) for a in sys.argv[1:])
run_dir = Path(args["hydra.run.dir"])
media = sys.modules.get("wandb.sdk.data_types._private")  # loaded by the fork server, if it was
probe = {
    "pid": os.getpid(),
    "ppid": os.getppid(),
    "pgid": os.getpgrp(),
    "name": __name__,
    "argv": sys.argv,
    "path0": sys.path[0],
    "cwd": os.getcwd(),
    "omp": os.environ.get("OMP_NUM_THREADS"),
    "wandb_mode": os.environ.get("WANDB_MODE"),
    "probe_env": os.environ.get("PROBE_ENV"),
    "stdin_null": os.path.samestat(os.fstat(0), os.stat(os.devnull)),
    "sigint_default": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
    "sigterm_default": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
    "threads": threading.active_count(),
    "os_threads": len(os.listdir("/proc/self/task")),
    "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
    "random": random.random(),
    "media_tmp_exists": os.path.isdir(media.MEDIA_TMP.name) if media else None,
    "media_tmp": media.MEDIA_TMP.name if media else None,
}
(run_dir / "probe.json").write_text(json.dumps(probe))
print("probe ran", flush=True)

end = args.get("probe.end", "exit:0")
if end.startswith("exit:"):
    sys.exit(int(end[5:]))
if end == "raise":
    raise RuntimeError("probe raised")
if end == "segv":
    os.kill(os.getpid(), signal.SIGSEGV)
if end == "interrupt":
    raise KeyboardInterrupt
if end.startswith("sleep:"):
    time.sleep(float(end[6:]))
