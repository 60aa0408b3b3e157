"""A stand-in for train.py in the sweep runner's tests: it takes train.py's overrides, imports
nothing heavy, and ends as the learning rate says, keeping train.py's contract (results.json
status and exit status: 0 finished, 3 diverged, 130 interrupted, 1 crash).

optim.lr >= 10: diverges (exit 3); optim.lr == 5: crashes (exit 1); otherwise it writes
trainer.max_steps validation rows of val/loss = 1/(i+1) + lr, $STANDIN_SLEEP seconds apart.
"""

import json
import math
import os
import signal
import sys
import time
from pathlib import Path

args = dict(a.split("=", 1) for a in sys.argv[1:])
run_dir = Path(args["hydra.run.dir"])
run_dir.mkdir(parents=True, exist_ok=True)
lr, seed = float(args.get("optim.lr", 0.001)), int(args.get("seed", 0))
steps = int(args.get("trainer.max_steps", 3))
choices = {"data": args.get("data", "digits"), "model": args.get("model", "cnn"),
           "optim": args.get("optim", "adamw")}  # fmt: skip


def finish(status: str, code: int, **metrics: float) -> None:
    results = {"status": status, "choices": choices, "runtime_s": 0.01, **metrics}
    (run_dir / "results.json").write_text(json.dumps(results))
    sys.exit(code)


def on_signal(signum, frame):
    finish("interrupted", 130)


signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)
if lr == 5:
    print("RuntimeError: boom", file=sys.stderr)
    finish("failed", 1)
rows = ["epoch,step,train/loss,val/loss\n"]
for i in range(steps):
    loss = math.nan if lr >= 10 and i > 0 else 1 / (i + 1) + lr + 0.001 * seed
    rows.append(f"{i},{10 * i + 9},{loss},{loss}\n")
    (run_dir / "metrics.csv").write_text("".join(rows))
    if math.isnan(loss):
        finish("diverged", 3)
    time.sleep(float(os.environ.get("STANDIN_SLEEP", "0")))
finish("finished", 0, **{"val/loss": loss, "test/loss": loss + 0.01})
