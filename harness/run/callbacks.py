"""Callbacks every run gets (the optional ones come from the `callbacks` config group).
(Over 250 lines: eight small callbacks, the longest ~75 lines, that every run installs as one set.)
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.utils._pytree import tree_leaves
from torchmetrics import Metric

from harness.errors import Diverged
from lightning_modules.base import is_logging_step


class ConfigInCheckpoint(L.Callback):
    """Stores the run's resolved config (plain values) in every checkpoint, so a checkpoint alone
    is enough to rebuild the model it holds."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict
    ) -> None:
        checkpoint["config"] = self.config


class ValidateAtLastStep(L.Callback):
    """Lightning stops at trainer.max_steps without validating when that step falls mid-epoch, so
    a run sized in steps would end with stale validation metrics and no best checkpoint for its
    last stretch. Asking it to stop at that step makes it validate first (its early-stop path)."""

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if 0 < trainer.max_steps <= trainer.global_step:
            trainer.should_stop = True


class RandomState(L.Callback):
    """Saves the global random generators (torch, CUDA, numpy, Python) in every checkpoint and
    restores them on resume, so dropout and anything else drawing from them continues as if the
    run had never stopped. Lightning saves none of them. (Data order and augmentation need no help:
    they are functions of (seed, epoch, batch).) Plain tensors and numbers only: checkpoints load
    with weights_only=True."""

    def state_dict(self) -> dict[str, Any]:
        name, keys, pos, has_gauss, cached = np.random.get_state()
        version, internal, gauss = random.getstate()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
            "python": [version, list(internal), gauss],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))


class LoaderPosition(L.Callback):
    """Hands a resumed run's training loader the position Lightning saved (epoch, next batch).
    Lightning applies it only when it builds the loader after restoring; a learning-rate schedule
    sized by `trainer.estimated_stepping_batches` under trainer.max_epochs makes it build the
    loader first, and the saved position was then dropped: the resumed epoch started over.
    Loading the same position twice is harmless (nothing is iterated in between)."""

    def __init__(self) -> None:
        self.states: list[dict[str, Any]] = []

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict
    ) -> None:
        loop = checkpoint.get("loops", {}).get("fit_loop", {}).get("state_dict", {})
        self.states = list(loop.get("combined_loader", []))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.states:
            return
        # The stateful loaders in Lightning's order (CombinedLoader.flattened), as it saved them.
        loaders = tree_leaves(trainer.train_dataloader)
        stateful = [
            x for x in loaders if hasattr(x, "state_dict") and hasattr(x, "load_state_dict")
        ]
        if len(stateful) == len(self.states):
            for loader, state in zip(stateful, self.states, strict=True):
                loader.load_state_dict(state)
        self.states = []


class MetricStates(L.Callback):
    """torchmetrics accumulate an epoch metric (train/acc) batch by batch in states that
    Lightning does not save, so a run resumed mid-epoch would report it over part of the epoch.
    This saves every metric's states in the checkpoint and restores them."""

    @staticmethod
    def _metrics(pl_module: L.LightningModule) -> dict[str, Metric]:
        return {n: m for n, m in pl_module.named_modules() if isinstance(m, Metric)}

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict
    ) -> None:
        checkpoint["metric_states"] = {
            name: {"states": dict(m.metric_state), "updates": m._update_count}
            for name, m in self._metrics(pl_module).items()
        }

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict
    ) -> None:
        saved = checkpoint.get("metric_states", {})
        for name, metric in self._metrics(pl_module).items():
            if name in saved:
                for state, value in saved[name]["states"].items():
                    setattr(metric, state, value)
                metric._update_count, metric._computed = saved[name]["updates"], None


class FitMetrics(L.Callback):
    """The last value of every metric fit logged (trainer.callback_metrics), saved in each
    checkpoint: a run resumed after its training ended (killed while testing) fits nothing, so
    Lightning's callback_metrics stay empty, and results.json takes these instead."""

    def __init__(self) -> None:
        self.restored: dict[str, float] = {}

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict
    ) -> None:
        from harness.run.best import metrics_of

        checkpoint["fit_metrics"] = metrics_of(trainer)  # plain floats: loads with weights_only

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict
    ) -> None:
        self.restored = dict(checkpoint.get("fit_metrics", {}))


class StopOnNonFiniteLoss(L.Callback):
    """A NaN or infinite training loss stops the run, marked diverged at the first step whose loss
    was not finite, and no checkpoint taken after that step is ever written: the last good one is
    kept.

    Each step's loss is kept on the device (no host sync, no kernel) and read on the steps the
    loggers write (trainer.log_every_n_steps, which read the loss then anyway), before validation,
    before each checkpoint and at the end of training, and every FOLD steps in between so that few
    are kept: a per-step read would stall a GPU every step. With log_every_n_steps=1 the bad step
    itself is never taken; otherwise the optimizer may take up to log_every_n_steps - 1 more steps
    on non-finite gradients before the run stops. Under DDP every rank reads the earliest bad step
    of any rank, so all stop together."""

    NONE = torch.iinfo(torch.long).max  # "no bad step" in the cross-rank minimum
    FOLD = 256  # losses kept at most between two reads (one host sync per FOLD steps at worst)

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []  # () each, detached, since the last read
        self.steps: list[int] = []  # the global step of each
        self.first_bad: tuple[int, float] | None = None  # (step, loss) of the first bad loss read
        self.trained = False  # a training step has run (before it, check() has nothing to read)

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss) -> None:
        self.losses.append(loss.detach())
        self.steps.append(trainer.global_step)
        self.trained = True
        if is_logging_step(trainer):  # the batch that completes a logging step: one read, no
            self.check(trainer)  # per-micro-batch sync under gradient accumulation
        elif len(self.losses) >= self.FOLD:
            self._read()

    def _read(self) -> None:
        """Read the kept losses (one host sync) into first_bad, and drop them."""
        losses, steps, self.losses, self.steps = self.losses, self.steps, [], []
        if self.first_bad is not None or not losses:
            return
        values = torch.stack(losses).float()  # (n,)
        bad = ~torch.isfinite(values)
        if bad.any():
            i = int(bad.int().argmax())  # the first bad one
            self.first_bad = (steps[i], float(values[i]))

    def check(self, trainer: L.Trainer | None = None) -> None:
        """Raise Diverged if some rank has seen a non-finite loss. Every rank calls this at the
        same points (it is a collective under DDP)."""
        if not self.trained:  # no training step yet, on any rank
            return
        self._read()
        step = self.NONE if self.first_bad is None else self.first_bad[0]
        if trainer is not None and getattr(trainer, "world_size", 1) > 1:
            first = torch.tensor(step, dtype=torch.long, device=trainer.strategy.root_device)
            step = int(trainer.strategy.reduce(first, reduce_op="min"))
        if step == self.NONE:
            return
        if self.first_bad is not None and step == self.first_bad[0]:
            raise Diverged(step, f"the training loss is {self.first_bad[1]}")
        raise Diverged(step, "the training loss of another process is not finite")

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict
    ) -> None:
        # Weights can stay finite after a bad step (16-mixed's scaler skips it): check the loss too.
        self.check(trainer)
        floats = [t for t in checkpoint["state_dict"].values() if t.is_floating_point()]
        if floats and not torch.stack([torch.isfinite(t).all() for t in floats]).all().item():
            bad = next(k for k, t in checkpoint["state_dict"].items()
                       if t.is_floating_point() and not torch.isfinite(t).all())  # fmt: skip
            raise Diverged(trainer.global_step, f"the weights are not finite ({bad})")


class LastCheckpoint(Checkpoint):
    """RUN_DIR/checkpoints/last.ckpt, the resume point: saved every `every_n_steps` optimizer
    steps (None: not by steps), when a SIGTERM stops training, and at the end of training.

    A scheduler pre-empts a job with SIGTERM; Lightning's handler lets the current batch finish
    and raises SIGTERMException, and the checkpoint saved then resumes at the very next batch.

    Only batch ends inside an epoch with no validation due after them are resume points. At an
    epoch's last batch, validation and the epoch-end hooks are still to come and Lightning,
    resuming from there, skips them; at the epoch end itself Lightning resumes with its samplers
    one epoch ahead (another data order); before a mid-epoch validation (val_check_interval),
    Lightning resumes as if that validation had run. The first two were measured
    (tests/test_resume.py kills runs at these points). So a SIGTERM there, or during validation,
    or between the micro-batches of an accumulated step, saves nothing new: the run resumes from
    its previous checkpoint and replays the steps since, which harness.rundir.files keeps from
    being logged twice. A save due by steps waits for the next resume point. A Checkpoint
    subclass, so that Lightning calls it after the callbacks whose state it saves."""

    def __init__(self, path: str | Path, every_n_steps: int | None = None) -> None:
        self.path, self.every_n_steps = str(path), every_n_steps
        self.saved_step: int | None = None

    def save(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)  # all of it: resuming needs it
        self.saved_step = trainer.global_step

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.saved_step = trainer.global_step  # a resumed run does not save its starting point

    @staticmethod
    def _resume_point(trainer: L.Trainer) -> bool:
        """Whether the run could resume from the batch that just ended. Not if it closes the epoch
        or the run (ValidateAtLastStep), not if a validation is due right after it (Lightning,
        restarting there, takes that validation as done), not between the micro-batches of an
        accumulated step. The private calls are Lightning's own tests for these."""
        loop = trainer.fit_loop.epoch_loop
        if loop.batch_progress.is_last_batch or trainer.should_stop:
            return False
        if trainer.accumulate_grad_batches > 1 and loop._should_accumulate():
            return False
        return not loop._should_check_val_fx(trainer.fit_loop._data_fetcher)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        n = self.every_n_steps
        # Due once n steps have passed since the last save; taken at the first resume point then.
        if n and trainer.global_step - (self.saved_step or 0) >= n and self._resume_point(trainer):
            self.save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step != self.saved_step:
            self.save(trainer)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if (
            isinstance(exception, SIGTERMException)
            and trainer.training
            and self._resume_point(trainer)
        ):
            self.save(trainer)
