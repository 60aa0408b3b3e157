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
    rates = {k: [1 / s for s in v] for k, v in seconds.items()}  # steps per second
    ratio = paired_ratio(rates["wandb"], rates["off"])
    print(f"MNIST CNN, {steps} steps: logging off {summary(rates['off'])} steps/s, W&B offline + "
          f"CSV {summary(rates['wandb'])} steps/s, on/off {ratio:.3f} (goal >= 0.97)")  # fmt: skip
    return {"steps": steps, "off_steps_per_s": rates["off"], "wandb_steps_per_s": rates["wandb"],
            "ratio": ratio}  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="50 steps: does it run?")
    args = parser.parse_args()
    main(args.repeats, args.quick)
