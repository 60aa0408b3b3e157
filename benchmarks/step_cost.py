"""Where the harness's fixed cost per training step goes (benchmarks/step_time.py's MLP 784-16-10,
where that cost dominates): the same steps timed with parts of the harness switched off one at
a time, then a bare lightning.Trainer on the same module, all side by side; and, with --profile,
cProfile over the timed steps of the full harness and of the bare Trainer, the functions that
differ listed with their time per step.

    python -m benchmarks.step_cost [--repeats 3] [--steps 400] [--profile]

The ablations are measured (ms a step of CPU time, median over rounds); cProfile's figures are
inflated by its own per-call cost and serve only to split the measured difference.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import lightning as L

from benchmarks.callbacks import StepTimer
from benchmarks.common import compose, data_overrides, interleaved, paired_difference, summary
from benchmarks.step_time import BATCH, FIXED_COST, WARMUP, plain_step

_, DATA, MODEL, _ = FIXED_COST
BASE = [*MODEL, f"data.batch_size={BATCH}", "optim=adamw", "scheduler=warmup_cosine",
        "trainer.max_epochs=-1", "trainer.limit_val_batches=1", "test=false"]  # fmt: skip
# Each variant switches off one more part than the one before it.
QUIET = ["trainer.log_every_n_steps=1000000"]  # no logging step in the timed window but its last
VARIANTS = {
    "harness (as a user runs it)": [],
    "- diagnostics and pictures (callbacks=[])": ["callbacks=[]"],
    "- logging steps (log_every_n_steps=10**6)": ["callbacks=[]", *QUIET],
    "- progress bar, W&B and CSV loggers": [
        "callbacks=[]",
        *QUIET,
        "trainer.enable_progress_bar=false",
        "logger.wandb=null",
        "logger.csv=false",
    ],
}
NO_OPS = 12  # callbacks that do nothing, added to the bare Trainer: Lightning's cost per callback


class Profiled(L.Callback):
    """cProfile from the end of step `warmup` to the end of the last step."""

    profile: ClassVar[cProfile.Profile | None] = None

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step == self.warmup:
            Profiled.profile = cProfile.Profile()
            Profiled.profile.enable()
        elif trainer.global_step == trainer.max_steps and Profiled.profile is not None:
            Profiled.profile.disable()


class Probe(L.Callback):
    """At the end of step `warmup` (not a logging step), times each per-step piece of work by
    calling it `calls` times in a row: microseconds a call, CPU time. Pieces with side effects
    run on copies or on a step where they do nothing (no logging, no checkpoint due)."""

    found: ClassVar[dict[str, float]] = {}

    def __init__(self, warmup: int, calls: int = 2000) -> None:
        self.warmup, self.calls = warmup, calls

    def time(self, name: str, fn: Any) -> None:
        fn()
        start = time.process_time()
        for _ in range(self.calls):
            fn()
        Probe.found[name] = 1e6 * (time.process_time() - start) / self.calls

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:  # fmt: skip
        if trainer.global_step != self.warmup:
            return
        import copy

        import torch
        from lightning.pytorch.trainer import call
        from lightning.pytorch.utilities.data import extract_batch_size

        from lightning_modules.base import is_logging_step

        optimizer = trainer.optimizers[0]
        x, y = batch
        with torch.no_grad():
            logits = pl_module(x)
        loss = outputs["loss"].detach()
        self.time("Lightning: one per-step hook, dispatched to every callback", lambda: call._call_callback_hooks(trainer, "on_before_zero_grad", optimizer))  # fmt: skip
        for cb in trainer.callbacks:
            key = f"dispatch: {type(cb).__name__}"

            def one(cb: L.Callback = cb) -> None:  # as Lightning dispatches (call.py)
                fn = cb.on_before_zero_grad
                if callable(fn):  # harness.run.build sets the hooks nobody overrides to None
                    with trainer.profiler.profile(f"[Callback]{cb.state_key}.on_before_zero_grad"):
                        fn(trainer, pl_module, optimizer)

            self.time(key, one)
            self.time(f"state_key: {type(cb).__name__}", lambda cb=cb: cb.state_key)
        by_name = {type(cb).__name__: cb for cb in trainer.callbacks}
        self.time("logging_steps.is_logging_step", lambda: is_logging_step(trainer))
        self.time("lightning extract_batch_size(batch)", lambda: extract_batch_size(batch))
        self.time("module.logs_this_step", pl_module.logs_this_step)
        if hasattr(pl_module, "train_acc"):
            acc = copy.deepcopy(pl_module.train_acc)
            self.time("torchmetrics MulticlassAccuracy.update", lambda: acc.update(logits, y))
            correct = torch.zeros((), dtype=torch.long)
            self.time("plain: correct += (argmax == y).sum()", lambda: correct.add_((logits.argmax(1) == y).sum()))  # fmt: skip
        if hasattr(pl_module, "train_right"):  # what Classifier.training_step counts now
            right = pl_module.train_right.clone()
            self.time("Classifier train/acc counts", lambda: right.add_((logits.argmax(1) == y).sum()))  # fmt: skip
        value = torch.zeros(())
        self.time("LightningModule.log of a 0-d tensor (a logging step does ~10-20)", lambda: pl_module.log("probe/x", value))  # fmt: skip
        if "OptimizerStats" in by_name:
            stats = by_name["OptimizerStats"]

            def logging_step_stats() -> None:  # what OptimizerStats does on a logging step
                stats._before = {
                    g: [p.detach().clone() for p in ps] for g, ps in stats.groups.items()
                }
                stats.on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

            self.time(f"OptimizerStats on a logging step ({len(stats.groups)} groups)", logging_step_stats)  # fmt: skip
        for name, hook, args in [
            ("StopOnNonFiniteLoss", "on_before_backward", (loss,)),
            ("Throughput", "on_train_batch_start", (batch, batch_idx)),
            ("Throughput", "on_train_batch_end", (outputs, batch, batch_idx)),
            ("OptimizerStats", "on_before_optimizer_step", (optimizer,)),
            ("OptimizerStats", "on_train_batch_end", (outputs, batch, batch_idx)),
            ("ProgressBar", "on_train_batch_end", (outputs, batch, batch_idx)),
            ("ValidateAtLastStep", "on_train_batch_end", (outputs, batch, batch_idx)),
            ("LastCheckpoint", "on_train_batch_end", (outputs, batch, batch_idx)),
            ("ModelCheckpoint", "on_train_batch_end", (outputs, batch, batch_idx)),
        ]:
            if name in by_name:
                self.time(f"{name}.{hook}", lambda c=by_name[name], h=hook, a=args: getattr(c, h)(trainer, pl_module, *a))  # fmt: skip


def probe(steps: int) -> None:
    """The per-call costs of Probe, in the full harness run."""
    from benchmarks.common import run_harness

    Probe.found.clear()
    with tempfile.TemporaryDirectory() as run_dir:
        run_harness([*data_overrides(DATA), *BASE, f"trainer.max_steps={WARMUP + steps}",
                     f"+callbacks.probe._target_={__name__}.Probe", f"+callbacks.probe.warmup={WARMUP}"],
                    Path(run_dir))  # fmt: skip
    print(
        "\nper call, CPU microseconds, inside the harness run (at the end of a non-logging step):"
    )
    for name, us in Probe.found.items():
        print(f"{us:9.1f}  {name}")


def harness(extra: list[str], steps: int, profile: bool = False) -> float:
    """CPU seconds a step of the harness with overrides `extra`."""
    from benchmarks.common import run_harness

    StepTimer.marks.clear()
    hooks = [f"+callbacks.step_timer._target_={StepTimer.__module__}.StepTimer",
             f"+callbacks.step_timer.warmup={WARMUP}"]  # fmt: skip
    if profile:
        hooks += [f"+callbacks.profiled._target_={__name__}.Profiled",
                  f"+callbacks.profiled.warmup={WARMUP}"]  # fmt: skip
    if "callbacks=[]" in extra:  # the group emptied: the timers go in as a list of their own
        extra = [e for e in extra if e != "callbacks=[]"]
        hooks = ["callbacks=[]", *hooks]
    with tempfile.TemporaryDirectory() as run_dir:
        run_harness([*data_overrides(DATA), *BASE, f"trainer.max_steps={WARMUP + steps}",
                     *hooks, *extra], Path(run_dir))  # fmt: skip
    (_, cpu_start), (_, cpu_end) = StepTimer.marks
    return (cpu_end - cpu_start) / steps


def bare(steps: int, profile: bool = False, no_ops: int = 0) -> float:
    """CPU seconds a step of a bare lightning.Trainer (no logger, callbacks, checkpoints, progress
    bar, model summary) fitting the harness's own module and datamodule."""
    from harness.run.build import build_datamodule, build_module, build_net

    cfg = compose([*data_overrides(DATA), *BASE])
    L.seed_everything(0, verbose=False)
    dm = build_datamodule(cfg)
    dm.setup("fit")
    net = build_net(cfg, dm.dims)
    module = build_module(cfg, net, dm.dims)
    StepTimer.marks.clear()
    callbacks: list[Any] = [StepTimer(WARMUP), *([Profiled(WARMUP)] if profile else [])]
    callbacks += [L.Callback() for _ in range(no_ops)]
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = L.Trainer(max_steps=WARMUP + steps, max_epochs=-1, logger=False, callbacks=callbacks,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            limit_val_batches=0, num_sanity_val_steps=0, default_root_dir=run_dir)  # fmt: skip
        trainer.fit(module, datamodule=dm)
    (_, cpu_start), (_, cpu_end) = StepTimer.marks
    return (cpu_end - cpu_start) / steps


def per_step(stats: pstats.Stats, steps: int) -> dict[str, tuple[float, float, float]]:
    """function -> (calls a step, own ms a step, cumulative ms a step)."""
    out = {}
    for (file, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = file.split("site-packages/")[-1].replace(str(Path.cwd()) + "/", "")
        out[f"{where}:{line}({name})"] = (
            calls / steps,
            1e3 * own / steps,
            1e3 * cumulative / steps,
        )
    return out


def profiles(steps: int, top: int) -> None:
    found = {}
    for name, run in (
        ("harness", lambda: harness([], steps, True)),
        ("bare", lambda: bare(steps, True)),
    ):
        run()
        found[name] = per_step(pstats.Stats(Profiled.profile), steps)
        total = sum(own for _, own, _ in found[name].values())
        print(f"cProfile, {name}: {total:.2f} ms a step of own time in profiled functions")
    h, b = found["harness"], found["bare"]
    print(f"\nfunctions by cumulative ms a step, harness (bare Trainer beside), top {top}:")
    print(f"{'harness ms':>10} {'bare ms':>8} {'calls':>6}  function")
    rows = sorted(h.items(), key=lambda kv: -kv[1][2])[:top]
    for fn, (calls, _, cumulative) in rows:
        print(f"{cumulative:10.3f} {b.get(fn, (0, 0, 0))[2]:8.3f} {calls:6.1f}  {fn}")
    print(f"\nown time, harness minus bare, largest {top} (ms a step):")
    diff = {fn: h[fn][1] - b.get(fn, (0, 0, 0))[1] for fn in h}
    for fn, d in sorted(diff.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{d:8.3f}  calls {h[fn][0]:5.1f} vs {b.get(fn, (0, 0, 0))[0]:5.1f}  {fn}")


def main(
    repeats: int = 3,
    steps: int = 400,
    profile: bool = False,
    top: int = 60,
    only_probe: bool = False,
) -> dict[str, Any]:
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    probe(20)
    if only_probe:
        return {}
    candidates = {"plain loop": lambda: plain_step(DATA, MODEL, steps)[1]}
    candidates |= {name: (lambda e=extra: harness(e, steps)) for name, extra in VARIANTS.items()}
    candidates["bare lightning.Trainer"] = lambda: bare(steps)
    candidates[f"bare lightning.Trainer + {NO_OPS} no-op callbacks"] = lambda: bare(
        steps, no_ops=NO_OPS
    )
    started = time.time()
    times = interleaved(candidates, repeats)
    print(f"MLP 784-16-10, batch {BATCH}, {steps} timed steps, CPU ms a step over {repeats} rounds; "
          "differences are medians of the per-round differences:")  # fmt: skip
    names = list(times)
    for i, name in enumerate(names):
        ms = [1e3 * v for v in times[name]]
        over = 1e3 * paired_difference(times[name], times["plain loop"])
        line = f"  {name:52s} {summary(ms)}  over plain {over:+.3f}"
        if i > 1:  # the saving of switching off one more part (the bare Trainer: of all the rest)
            line += f", vs the line above {1e3 * paired_difference(times[name], times[names[i - 1]]):+.3f}"
        print(line)
    print(f"({(time.time() - started) / 60:.1f} min)")
    if profile:
        profiles(steps, top)
    return {name: values for name, values in times.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=60)
    parser.add_argument("--probe", action="store_true", help="only the per-call costs")
    args = parser.parse_args()
    main(args.repeats, args.steps, args.profile, args.top, args.probe)
