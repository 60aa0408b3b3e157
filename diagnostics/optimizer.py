"""Optimizer diagnostics: how big each step is next to the weights it moves, and how much memory
the optimizer keeps. (The learning rate and the gradient norm are logged by the LightningModule
itself: train/lr, train/grad_norm.)

Logged names:
  optim/update_ratio/GROUP   ||W_after - W_before|| / ||W_before|| over the parameters of one
                             layer group, per logged step. Around 1e-3 is the usual healthy
                             size for Adam-style training; far below, the group barely learns.
  optim/state_bytes          bytes of tensors the optimizer keeps (momentum, second moments...)
  optim/state_per_param      state bytes / parameter bytes: 0 for SGD, 1 for momentum, 2 Adam
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import lightning as L
import torch
from torch import nn
from torch.optim import Optimizer

from diagnostics.logged import RowLogger
from harness.numbers import is_int
from lightning_modules.base import is_logging_step

PREFIX = "net."  # the network inside a TrainingModule; left out of group names


def layer_groups(
    named_parameters: Iterable[tuple[str, nn.Parameter]], depth: int = 2
) -> dict[str, list[nn.Parameter]]:
    """Trainable parameters grouped by the first `depth` parts of their module's name:
    net.stages.0.1.conv1.weight -> "stages.0", net.head.bias -> "head"."""
    groups: dict[str, list[nn.Parameter]] = defaultdict(list)
    for name, p in named_parameters:
        if not p.requires_grad:
            continue
        name = name.removeprefix(PREFIX)
        module = name.split(".")[:-1] or [name]  # drop ".weight" / ".bias"
        groups[".".join(module[:depth])].append(p)
    return dict(groups)


def update_ratio(before: list[torch.Tensor], after: list[torch.Tensor]) -> torch.Tensor:
    """||after - before|| / ||before|| over a list of tensors, as a 0-d tensor (no host sync)."""
    step = torch.nn.utils.get_total_norm([a - b for a, b in zip(after, before, strict=True)])
    return step / torch.nn.utils.get_total_norm(before).clamp_min(1e-12)


def state_bytes(optimizer: Optimizer) -> int:
    """Bytes of every tensor in the optimizer's per-parameter state (read from shapes: no sync)."""
    return sum(
        v.numel() * v.element_size()
        for state in optimizer.state.values()
        for v in state.values()
        if isinstance(v, torch.Tensor)
    )


class OptimizerStats(RowLogger):
    """Logs optim/update_ratio/GROUP, optim/state_bytes and optim/state_per_param on the steps
    Lightning logs (trainer.log_every_n_steps). On those steps only, it keeps a copy of the
    trainable weights from before the optimizer step (one model's worth of memory, briefly)."""

    def __init__(self, depth: int = 2) -> None:
        if not is_int(depth) or depth < 1:
            raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
        super().__init__()
        self.depth = depth
        self.groups: dict[str, list[nn.Parameter]] = {}
        self._before: dict[str, list[torch.Tensor]] | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.groups = layer_groups(pl_module.named_parameters(), self.depth)

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Optimizer
    ) -> None:
        if is_logging_step(trainer):
            self._before = {g: [p.detach().clone() for p in ps] for g, ps in self.groups.items()}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        if self._before is None:
            return
        before, self._before = self._before, None
        values: dict[str, torch.Tensor | float] = {
            f"optim/update_ratio/{group}": update_ratio(before[group], [p.detach() for p in params])
            for group, params in self.groups.items()
        }
        size = state_bytes(trainer.optimizers[0])
        param_size = sum(p.numel() * p.element_size() for ps in self.groups.values() for p in ps)
        values["optim/state_bytes"] = float(size)
        values["optim/state_per_param"] = size / max(param_size, 1)
        self.log_row(trainer, values)  # one row, one host read (diagnostics.logged)
