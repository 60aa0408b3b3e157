"""Start-up: the fixed cost every run of a sweep pays, against the cost of importing torch.

- `python -c "import torch"`: the floor any PyTorch program pays.
- `python train.py --help`: must not import torch at all; against a bare `@hydra.main` app's
  `--help` (issue 15's goal: at most 1.3x).
- `python train.py data=digits model=cnn ...`: seconds from launching the command to the first
  training step (W&B offline, CSV, checks, data set-up), read by a callback that prints the clock.
- Where that time goes, phase by phase, measured in a fresh process (`--phases`).

    python -m benchmarks.startup [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    FIRST_STEP,
    PYTHON,
    ROOT,
    interleaved,
    paired_ratio,
    summary,
    wall,
)


def first_step_seconds() -> float:
    """Seconds from launching train.py to its first training step."""
    with tempfile.TemporaryDirectory() as run_dir:
        started = time.time()
        args = ["data=digits", "model=cnn", "trainer.max_steps=1", "test=false",
                "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}",
                "+callbacks.first_step._target_=benchmarks.callbacks.PrintFirstStep"]  # fmt: skip
        out = subprocess.run(
            [PYTHON, "train.py", *args],
            cwd=ROOT,
            env={**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"},
            capture_output=True,
            text=True,
            check=True,
        )
    stamp = next(line for line in out.stdout.splitlines() if line.startswith(FIRST_STEP))
    return float(stamp.removeprefix(FIRST_STEP)) - started


def phases() -> dict[str, float]:
    """Seconds of each start-up phase of train(), in order, in this (fresh) process."""
    times: dict[str, float] = {}
    mark = time.perf_counter()

    def done(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        times[name] = now - mark
        mark = now

    import torch  # noqa: F401

    done("import torch")
    import lightning as L

    done("import lightning (with torchmetrics)")
    import wandb

    done("import wandb")
    from benchmarks.common import compose
    from harness.config.checks import check_config

    cfg = compose(["data=digits", "model=cnn"])
    done("compose the config (Hydra)")
    check_config(cfg)
    done("check the config (dry-built optimizer, schedule, Trainer)")
    from harness.run.build import build_datamodule, build_module, build_net

    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.setup("fit")
    done("data set-up (digits: scikit-learn's files)")
    net = build_net(cfg, dm.dims)
    build_module(cfg, net, dm.dims)
    done("build network and LightningModule")
    from harness.rundir.provenance import git_state

    git_state()
    done("git state (2 git commands)")
    with tempfile.TemporaryDirectory() as run_dir:
        from harness.tracking.wandb import make_wandb_logger

        os.environ["WANDB_MODE"] = "offline"
        logger, _ = make_wandb_logger({}, Path(run_dir), "startup0", {})  # starts the run
        done("W&B init (offline)")
        L.Trainer(logger=logger, enable_progress_bar=False, max_steps=1)
        done("build the Trainer")
        wandb.finish()
        done("W&B finish")
    return times


BARE_APP = """import hydra

@hydra.main(version_base=None, config_path=None)
def main(cfg):
    pass

if __name__ == "__main__":
    main()
"""


def main(repeats: int = 3) -> dict[str, Any]:
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    bare = Path(tempfile.mkdtemp(prefix="bare-hydra-")) / "app.py"
    bare.write_text(BARE_APP)
    times = interleaved(
        {
            "import torch": lambda: wall([PYTHON, "-c", "import torch"]),
            "--help": lambda: wall([PYTHON, "train.py", "--help"]),
            "bare --help": lambda: wall([PYTHON, str(bare), "--help"]),
            "first step": first_step_seconds,
        },
        repeats,
    )
    help_ratio = paired_ratio(times["--help"], times["import torch"])
    bare_ratio = paired_ratio(times["--help"], times["bare --help"])
    step_ratio = paired_ratio(times["first step"], times["import torch"])
    print(f"python -c 'import torch': {summary(times['import torch'])} s")
    print(f"python train.py --help: {summary(times['--help'])} s ({help_ratio:.2f}x import torch, "
          f"{bare_ratio:.2f}x a bare @hydra.main app's --help, {summary(times['bare --help'])} s; "
          "goal <= 1.3x)")  # fmt: skip
    print(f"train.py to its first training step (digits, CNN, W&B offline): "
          f"{summary(times['first step'])} s ({step_ratio:.2f}x import torch)")  # fmt: skip
    out = subprocess.run([PYTHON, "-m", "benchmarks.startup", "--phases"], cwd=ROOT,
                         env={**os.environ, **env}, capture_output=True, text=True, check=True)  # fmt: skip
    breakdown = json.loads(out.stdout.strip().splitlines()[-1])
    print("where the time goes (one fresh process):")
    for name, seconds in breakdown.items():
        print(f"  {seconds:7.3f} s  {name}")
    return {**times, "help_ratio": help_ratio, "help_bare_ratio": bare_ratio,
            "first_step_ratio": step_ratio, "phases": breakdown}  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--phases", action="store_true", help="print the phase breakdown (JSON)")
    args = parser.parse_args()
    if args.phases:
        sys.stdout.write(json.dumps(phases()) + "\n")
    else:
        main(args.repeats)
