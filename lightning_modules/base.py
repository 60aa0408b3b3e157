"""What every task's LightningModule shares: the optimizer and schedule built from factories, the
weight-decay parameter groups, and the learning rate and gradient norm in the logs."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau

OptimizerFactory = Callable[
    [Iterable[Any]], Optimizer
]  # e.g. functools.partial(torch.optim.AdamW, lr=1e-3)
SchedulerFactory = Callable[..., Any]  # (optimizer, total_steps=N) -> torch scheduler


def param_groups(module: nn.Module, decay_norm_and_bias: bool) -> list[dict[str, Any]]:
    """Trainable parameters in groups.

    Unless decay_norm_and_bias, tensors with fewer than two dimensions (biases, norm scales and
    shifts) get weight_decay=0: decaying them towards zero only hurts (the usual practice since
    Goyal et al., 2017; nanoGPT does the same). Hidden weight matrices (2-D, other than
    embeddings and the network's output `head`) form their own group tagged "matrix": True, which
    Muon reads (lightning_modules/muon.py) and every other optimizer ignores.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    outer = {id(m.weight) for m in module.modules() if isinstance(m, nn.Embedding)}
    for m in module.modules():
        head = getattr(m, "head", None)
        if isinstance(head, nn.Module):
            outer |= {id(p) for p in head.parameters()}
    small = [p for p in params if p.ndim < 2]
    matrices = [p for p in params if p.ndim == 2 and id(p) not in outer]
    rest = [p for p in params if p.ndim >= 2 and not (p.ndim == 2 and id(p) not in outer)]
    groups = [{"params": matrices, "matrix": True}, {"params": rest}]
    groups.append(
        {"params": small} if decay_norm_and_bias else {"params": small, "weight_decay": 0.0}
    )
    return [g for g in groups if g["params"]]


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
        into a Python number every step, a host-device sync on a GPU (harness.run.callbacks.ProgressBar
        shows it at the logging interval instead). Under DDP this is rank zero's loss on its part
        of the batch; epoch metrics are reduced over ranks."""
        if self.logs_this_step():
            self.log("train/loss", loss, on_step=True, on_epoch=False, batch_size=batch_size)

    def logs_this_step(self) -> bool:
        """Whether the loggers get this optimizer step's metrics: every trainer.log_every_n_steps
        steps, and the last step of a run sized by max_steps (Lightning's own rule). Values logged
        on other steps are never read, yet each self.log call costs Lightning a walk over its
        bookkeeping (about as much as a whole small training step), so they are not logged."""
        trainer = self._trainer
        if trainer is None:  # called outside a Trainer (self.log then warns and does nothing)
            return True
        step = trainer.global_step + 1  # the step under way, counted from 1
        every = trainer.log_every_n_steps
        return (every > 0 and step % every == 0) or step == trainer.max_steps

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
