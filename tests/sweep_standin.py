"""A stand-in for train.py in the sweep runner's tests: it takes train.py's overrides, imports
nothing heavy, and ends as the learning rate says, keeping train.py's contract (results.json
status and exit status: 0 finished, 3 diverged, 130 interrupted, 1 crash).

optim.lr >= 10: diverges (exit 3); optim.lr == 5: crashes (exit 1); otherwise it writes
trainer.max_steps validation rows of val/loss = 1/(i+1) + lr, $STANDIN_SLEEP seconds apart, and
checkpoints/last.ckpt after each (a temporary file renamed, as train.py writes it).

For the tests: `${oc.env:NAME}` in a value is resolved from the environment, as Hydra does; the
argv is kept in argv.json (what `ps` shows); a `+notes` value is kept only as its sha256.
$STANDIN_LOG: a line per start and end of a run. With $CHAOS_WINDOW=ckpt, mid-checkpoint it logs
"ckpt PID" to $CHAOS_TRACE and sleeps $CHAOS_PAUSE_S: a window for a kill. With $STANDIN_GATE, a
run that would finish first waits until that file exists: a test decides when, not the clock.
"""

import hashlib
import json
import math
import os
import re
import signal
import sys
import time
from pathlib import Path


def resolve(value: str) -> str:
    return re.sub(r"\$\{oc\.env:(\w+)\}", lambda m: os.environ[m.group(1)], value)


args = {k: resolve(v) for k, v in (a.split("=", 1) for a in sys.argv[1:])}
run_dir = Path(args["hydra.run.dir"])
run_dir.mkdir(parents=True, exist_ok=True)
(run_dir / "argv.json").write_text(json.dumps(sys.argv[1:]))
lr, seed = float(args.get("optim.lr", 0.001)), int(args.get("seed", 0))
steps = int(args.get("trainer.max_steps", 3))
choices = {"data": args.get("data", "digits"), "model": args.get("model", "cnn"),
           "optim": args.get("optim", "adamw")}  # fmt: skip
extra = {"notes_sha256": hashlib.sha256(args["+notes"].encode()).hexdigest()} if "+notes" in args else {}  # fmt: skip


def log(line: str) -> None:
    if os.environ.get("STANDIN_LOG"):
        with open(os.environ["STANDIN_LOG"], "a") as f:
            f.write(f"{line} {run_dir.name} {os.getpid()}\n")


def pause(window: str) -> None:
    if os.environ.get("CHAOS_WINDOW") == window:
        with open(os.environ["CHAOS_TRACE"], "a") as f:
            f.write(f"{window} {os.getpid()}\n")
        time.sleep(float(os.environ.get("CHAOS_PAUSE_S", "0")))


def finish(status: str, code: int, **metrics: float) -> None:
    results = {"status": status, "choices": choices, "runtime_s": 0.01, **extra, **metrics}
    (run_dir / "results.json").write_text(json.dumps(results))
    log(f"end-{status}")
    sys.exit(code)


def on_signal(signum, frame):
    finish("interrupted", 130)


signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)
log("start")
if lr == 5:
    print("RuntimeError: boom", file=sys.stderr)
    finish("failed", 1)
rows = ["epoch,step,train/loss,val/loss\n"]
(run_dir / "checkpoints").mkdir(exist_ok=True)
for i in range(steps):
    loss = math.nan if lr >= 10 and i > 0 else 1 / (i + 1) + lr + 0.001 * seed
    rows.append(f"{i},{10 * i + 9},{loss},{loss}\n")
    (run_dir / "metrics.csv").write_text("".join(rows))
    if math.isnan(loss):
        finish("diverged", 3)
    tmp = run_dir / "checkpoints" / "last.ckpt.tmp"
    with open(tmp, "w") as f:
        f.write(f"step {i}\n")
        f.flush()
        pause("ckpt")
    os.replace(tmp, run_dir / "checkpoints" / "last.ckpt")
    time.sleep(float(os.environ.get("STANDIN_SLEEP", "0")))
while os.environ.get("STANDIN_GATE") and not Path(os.environ["STANDIN_GATE"]).exists():
    time.sleep(0.05)
finish("finished", 0, **{"val/loss": loss, "test/loss": loss + 0.01})
