"""What every task's LightningModule shares: the optimizer and schedule built from factories on
the parameter groups (optim/), the learning rate and gradient norm in the logs, the one rule for
"is this a logging step", and the exact mean every val/ and test/ metric is.

Logging steps: the loggers get an optimizer step's metrics every trainer.log_every_n_steps steps,
and at the last step of a run sized by trainer.max_steps. Everything that does extra work for the
logs (the modules' self.log calls, the diagnostics, the progress bar) asks `is_logging_step`, so
that no step's work is done for logs nobody writes.

Means: not torchmetrics' MeanMetric: with nan_strategy="disable" (1.9.0) it replaces the weight
by ones, and its other strategies read every batch's values on the host to look for NaNs. In
`WeightedMean` a NaN stays in the sum, so a diverged model's loss shows as NaN; the sums add
across DDP ranks.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torchmetrics import Metric

from optim.optimizer import OptimizerFactory, SchedulerFactory, param_groups


def logs_step(trainer: Any, step: int) -> bool:
    """Whether optimizer step `step` (counted from 1) is one whose metrics the loggers write."""
    every = trainer.log_every_n_steps
    return (every > 0 and step % every == 0) or step == trainer.max_steps


def is_logging_step(trainer: Any) -> bool:
    """True in the hooks of the training batch that completes a logging step (not in the earlier
    batches of a gradient accumulation). Lightning has no public flag for this; the count of
    batches that stepped is what its own logger connector and monitors read."""
    if trainer.fit_loop._should_accumulate():
        return False
    return logs_step(trainer, trainer.fit_loop.epoch_loop._batches_that_stepped + 1)


class WeightedMean(Metric):
    """sum(value * weight) / sum(weight) over every update (weight 1 when not given)."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        # The names MeanMetric's states had: checkpoints written before keep loading.
        self.add_state("mean_value", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("weight", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, value: torch.Tensor, weight: float | torch.Tensor | None = None) -> None:
        value = torch.as_tensor(value, dtype=torch.float32, device=self.device)
        if weight is None or not isinstance(weight, torch.Tensor):
            # A plain number is a kernel argument: no tensor built, no host-to-device copy (on a
            # GPU that would wait for the stream at every batch).
            w = 1.0 if weight is None else float(weight)
            self.mean_value += value.sum() * w
            self.weight += value.numel() * w
            return
        weight = weight.to(device=self.device, dtype=torch.float32)
        self.mean_value += (value * weight).sum()
        self.weight += torch.broadcast_to(weight, value.shape).sum()

    def compute(self) -> torch.Tensor:
        return self.mean_value / self.weight


def frozen_modules(module: nn.Module) -> list[nn.Module]:
    """The outermost submodules that have parameters and none of them trainable."""
    found = []
    for child in module.children():
        params = list(child.parameters())
        if params and not any(p.requires_grad for p in params):
            found.append(child)
        else:
            found += frozen_modules(child)
    return found


class TrainingModule(L.LightningModule):
    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        *,
        monitor: str,
        decay_norm_and_bias: bool = False,
    ) -> None:
        super().__init__()
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.monitor = monitor
        self.decay_norm_and_bias = decay_norm_and_bias

    def train(self, mode: bool = True) -> TrainingModule:
        # Frozen weights (a linear probe's encoder) keep their normalisation statistics and skip
        # dropout too: a submodule with every parameter frozen runs in eval mode, always.
        super().train(mode)
        if mode:
            for m in frozen_modules(self):
                m.eval()
        return self

    def on_train_start(self) -> None:
        self.train()  # Lightning leaves modes as it finds them; apply the rule before step one

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(param_groups(self, self.decay_norm_and_bias))
        if self.scheduler_factory is None:
            return optimizer
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total):
            raise ValueError(
                "a learning-rate schedule needs a finite run: set trainer.max_epochs or trainer.max_steps"
            )
        scheduler = self.scheduler_factory(optimizer, total_steps=int(total))
        per_epoch = isinstance(scheduler, ReduceLROnPlateau)  # it needs a validation metric
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "interval": "epoch" if per_epoch else "step",
                "monitor": self.monitor,
            },
        }

    def log_train_loss(self, loss: torch.Tensor, batch_size: int) -> None:
        """train/loss on the steps the loggers write. Not prog_bar=True: Lightning would turn it
        into a Python number every step, a host-device sync on a GPU (harness.run.console.ProgressBar
        shows it at the logging interval instead). Under DDP this is rank zero's loss on its part
        of the batch; epoch metrics are reduced over ranks."""
        if self.logs_this_step():
            self.log("train/loss", loss, on_step=True, on_epoch=False, batch_size=batch_size)

    def logs_this_step(self) -> bool:
        """Whether the loggers get this optimizer step's metrics: every trainer.log_every_n_steps
        steps, and the last step of a run sized by max_steps (logs_step above). Values logged
        on other steps are never read, yet each self.log call costs Lightning a walk over its
        bookkeeping (about as much as a whole small training step), so they are not logged."""
        trainer = self._trainer
        if trainer is None:  # called outside a Trainer (self.log then warns and does nothing)
            return True
        return logs_step(trainer, trainer.global_step + 1)  # the step under way, counted from 1

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        # The lr this step uses, and the global gradient norm before any clipping (AMP-unscaled;
        # under DDP the gradients are already averaged over ranks). Both stay on the device until
        # Lightning writes them: no host-device sync. (self.log of a Python float would be
        # torch.tensor(lr, device=...), a blocking copy to the GPU; torch.full passes the value
        # as a kernel argument instead.)
        if not self.logs_this_step():
            return
        lr = optimizer.param_groups[0]["lr"]
        if not isinstance(lr, torch.Tensor):
            lr = torch.full((), lr, device=self.device)
        self.log("train/lr", lr, on_step=True, on_epoch=False)
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if grads:
            norm = torch.nn.utils.get_total_norm(grads)
            self.log("train/grad_norm", norm, on_step=True, on_epoch=False)
