"""W&B offline logging at the default interval (every 50 steps, with the CSV log) vs logging off,
in training steps per second of the harness on the MNIST CNN (short steps: where a logger's cost
shows most). Goal: on / off >= 0.97.

    python -m benchmarks.wandb_overhead [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from benchmarks.common import interleaved, paired_ratio, summary
from benchmarks.step_time import harness_step

STEPS = 200  # four logging steps at the default interval of 50
MODEL = ["model=cnn"]
OFF = ("logger.wandb=null", "logger.csv=false")


def main(repeats: int = 3, quick: bool = False) -> dict[str, Any]:
    os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    steps = 50 if quick else STEPS
    seconds = interleaved(
        {
            "off": lambda: harness_step("mnist", MODEL, steps, OFF),
            "wandb": lambda: harness_step("mnist", MODEL, steps),
        },
        repeats,
    )
    result: dict[str, Any] = {"steps": steps}
    # CPU time: of this process only; W&B's own service process works beside it.
    for i, clock in enumerate(("wall", "cpu")):
        off, on = ([1 / t[i] for t in seconds[k]] for k in ("off", "wandb"))  # steps per second
        result[clock] = {"off_steps_per_s": off, "wandb_steps_per_s": on,
                         "ratio": paired_ratio(on, off)}  # fmt: skip
        print(f"MNIST CNN, {steps} steps, {clock} time: logging off {summary(off)} steps/s, W&B "
              f"offline + CSV {summary(on)} steps/s, on/off {result[clock]['ratio']:.3f} "
              "(goal >= 0.97)")  # fmt: skip
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="50 steps: does it run?")
    args = parser.parse_args()
    main(args.repeats, args.quick)
