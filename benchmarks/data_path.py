"""Device-resident data path vs torchvision's DataLoader with PIL transforms (num_workers=2), in
training images per second: CIFAR-10 with its augmentation (random crop with 4-pixel padding,
horizontal flip) and normalisation, batches of 128 delivered on the training device.
Goal: tensor / dataloader >= 8.

Both come from the same CIFAR10DataModule (data.loader=tensor vs data.loader=dataloader), attached
to a Trainer for the device, as in a run.

    python -m benchmarks.data_path [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import lightning as L

from benchmarks.common import compose, data_overrides, interleaved, paired_ratio, summary, sync
from harness.run.build import build_datamodule

BATCH = 128
WARMUP = 5  # batches before the clock starts (DataLoader: its worker processes start here)
BATCHES = 50
WORKERS = 2


def images_per_second(loader: str, batches: int) -> float:
    dm = build_datamodule(compose([*data_overrides("cifar10"), f"data.batch_size={BATCH}",
                                   f"data.loader={loader}", f"data.num_workers={WORKERS}"]))  # fmt: skip
    dm.setup("fit")
    dm.trainer = L.Trainer(accelerator="auto", devices=1, logger=False, enable_progress_bar=False)
    device = dm.trainer.strategy.root_device
    batches_out = iter(dm.train_dataloader())
    for step in range(WARMUP + batches):
        if step == WARMUP:
            sync()
            start = time.perf_counter()
        x, y = next(batches_out)
        # What Lightning does with a DataLoader's batch (the tensor path's is there already).
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    sync()
    seconds = time.perf_counter() - start
    del batches_out  # stops the worker processes
    return batches * BATCH / seconds


def main(repeats: int = 3, quick: bool = False) -> dict[str, Any]:
    batches = 10 if quick else BATCHES
    rates = interleaved(
        {
            "tensor": lambda: images_per_second("tensor", batches),
            "dataloader": lambda: images_per_second("dataloader", batches),
        },
        repeats,
    )
    ratio = paired_ratio(rates["tensor"], rates["dataloader"])
    print(f"CIFAR-10 training batches of {BATCH}: tensor path {summary(rates['tensor'])} images/s, "
          f"DataLoader + PIL ({WORKERS} workers) {summary(rates['dataloader'])} images/s, "
          f"tensor/dataloader {ratio:.1f}x (goal >= 8)")  # fmt: skip
    return {"batch": BATCH, "batches": batches, "workers": WORKERS, **rates, "ratio": ratio}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10 batches: does it run?")
    args = parser.parse_args()
    main(args.repeats, args.quick)
