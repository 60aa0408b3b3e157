"""Harness step time vs a plain PyTorch training loop: same network, data tensors, optimizer,
schedule, batch size and device. Goal: harness / plain <= 1.05 with logging on.

The harness runs as a user runs it (train(cfg): Lightning, CSV + W&B offline logging at the
default interval, train/acc, train/lr and train/grad_norm every step, the progress bar). The plain
loop is what one writes by hand with the data on the device (airbench style): index a batch,
augment and normalise it with the same tensor functions, forward, backward, step.

    python -m benchmarks.step_time [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.callbacks import StepTimer
from benchmarks.common import (
    GPUUtilisation,
    data_overrides,
    device,
    interleaved,
    paired_difference,
    paired_ratio,
    run_harness,
    summary,
    sync,
)

BATCH = 128
WARMUP = 5  # steps before the clock starts (first-call allocations, autotuning)
# (name, data, model overrides, timed steps). Timed steps are a multiple of the default logging
# interval (50), so the timed window holds its share of logging steps. On a CPU the ResNet-18
# layout runs at width 8 (1/64 of the compute, to finish in minutes), where the harness's fixed
# cost per step weighs more than at the full width 64 it runs at on a GPU.
CASES = {
    "cpu": [
        ("MNIST CNN", "mnist", ["model=cnn"], 100),
        ("ResNet-18 (width 8), CIFAR-10", "cifar10", ["model=resnet", "model.width=8"], 50),
    ],
    "cuda": [
        ("MNIST CNN", "mnist", ["model=cnn"], 500),
        ("ResNet-18, CIFAR-10", "cifar10", ["model=resnet"], 200),
    ],
}
# A network with almost no compute, so that harness - plain is the harness's fixed cost per step
# in milliseconds (no goal: it predicts the ratio for any network, ratio = 1 + cost / step time).
FIXED_COST = (
    "MLP 784-16-10 (fixed cost per step)",
    "mnist",
    ["model=mlp", "model.hidden=[16]"],
    200,
)


def harness_step(
    data: str, model: list[str], steps: int, extra: tuple[str, ...] = ()
) -> tuple[float, float]:
    """(wall, CPU) seconds per training step of the harness (extra: more overrides)."""
    StepTimer.marks.clear()
    with tempfile.TemporaryDirectory() as run_dir, GPUUtilisation() as gpu:
        run_harness([*data_overrides(data), *model, f"data.batch_size={BATCH}", "optim=adamw",
                     "scheduler=warmup_cosine", "trainer.max_epochs=-1", f"trainer.max_steps={WARMUP + steps}",
                     "trainer.limit_val_batches=1", "test=false",
                     "+callbacks.step_timer._target_=benchmarks.callbacks.StepTimer",
                     f"+callbacks.step_timer.warmup={WARMUP}", *extra], Path(run_dir))  # fmt: skip
    (start, cpu_start), (end, cpu_end) = StepTimer.marks
    utilisation = gpu.mean_between(start, end)
    if utilisation is not None:
        print(f"  GPU utilisation over the harness's timed steps: {utilisation:.0f}%")
    return (end - start) / steps, (cpu_end - cpu_start) / steps


def plain_step(data: str, model: list[str], steps: int) -> tuple[float, float]:
    """(wall, CPU) seconds per training step of a hand-written loop over the same tensors."""
    from benchmarks.common import compose
    from datamodules.augment import normalize, random_crop, random_flip
    from harness.run.build import build_datamodule, build_net
    from optim.optimizer import param_groups
    from optim.schedules import cosine

    cfg = compose([*data_overrides(data), *model, f"data.batch_size={BATCH}"])
    dm = build_datamodule(cfg)
    dm.setup("fit")
    dev = torch.device(device())
    torch.manual_seed(0)
    net = build_net(cfg, dm.dims).to(dev)
    optimizer = torch.optim.AdamW(
        param_groups(net, False), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05
    )
    scheduler = cosine(optimizer, WARMUP + steps, warmup_fraction=0.05)
    images, labels = (t.to(dev) for t in dm.splits["train"])
    order = torch.randperm(len(labels), device=dev)
    g = torch.Generator(device=dev).manual_seed(0)
    net.train()
    for step in range(WARMUP + steps):
        if step == WARMUP:
            sync()
            start, cpu_start = time.perf_counter(), time.process_time()
        idx = order[step * BATCH : (step + 1) * BATCH]
        x, y = images.index_select(0, idx), labels.index_select(0, idx)
        if dm.augment:
            x = random_flip(random_crop(x, dm.crop_padding, g), g)
        x = normalize(x, dm.mean, dm.std)
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    sync()
    return (time.perf_counter() - start) / steps, (time.process_time() - cpu_start) / steps


def main(repeats: int = 3, quick: bool = False) -> list[dict[str, Any]]:
    os.environ.setdefault("WANDB_MODE", "offline")  # logging on, as a run without an API key
    os.environ.setdefault("WANDB_SILENT", "true")
    rows = []
    for name, data, model, full_steps in [*CASES[device()], FIXED_COST]:
        steps = 10 if quick else full_steps
        times = interleaved(
            {
                "plain": lambda: plain_step(data, model, steps),  # noqa: B023 (called at once)
                "harness": lambda: harness_step(data, model, steps),  # noqa: B023
            },
            repeats,
        )
        row = {"case": name, "batch": BATCH, "steps": steps}
        for i, clock in enumerate(("wall", "cpu")):
            plain, harness = ([t[i] for t in times[k]] for k in ("plain", "harness"))
            row[clock] = {"plain_s": plain, "harness_s": harness,
                          "ratio": paired_ratio(harness, plain)}  # fmt: skip
            row[clock]["extra_ms"] = 1e3 * paired_difference(harness, plain)
            print(f"{name}, {clock} time: plain {summary(plain)} s/step, harness "
                  f"{summary(harness)} s/step, harness/plain {row[clock]['ratio']:.3f} "
                  f"(goal <= 1.05), harness - plain {row[clock]['extra_ms']:.2f} ms/step")  # fmt: skip
        rows.append(row)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10 steps: does it run?")
    args = parser.parse_args()
    main(args.repeats, args.quick)
