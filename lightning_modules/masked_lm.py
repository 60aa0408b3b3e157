"""Masked language modelling (Devlin et al., 2019): a share of the tokens is corrupted and the
model predicts the original token at exactly those positions, from both sides of each.

BERT's corruption: each token is chosen with probability mask_prob (15%); a chosen token becomes
<mask> 80% of the time, a random token 10%, and stays itself 10%. Training draws fresh choices
every step (from the run's seeded random state); validation and test use the same choices every
time (seeded by the batch index), so their numbers compare across checks and runs.

Logged: train/loss, val/loss, test/loss (nats per chosen token), val/masked_acc and
test/masked_acc (the share of chosen tokens predicted exactly).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from datamodules.tensor_loader import derive_seed
from lightning_modules.base import TrainingModule, WeightedMean
from optim.optimizer import OptimizerFactory, SchedulerFactory

IGNORE = -100  # F.cross_entropy's ignore_index: positions that were not chosen


class MaskedLM(TrainingModule):
    target_kind: ClassVar[str] = "tokens"

    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        *,
        vocab_size: int,
        mask_index: int,
        monitor: str = "val/loss",
        decay_norm_and_bias: bool = False,
        mask_prob: float = 0.15,
    ) -> None:
        super().__init__(
            net, optimizer, scheduler, monitor=monitor, decay_norm_and_bias=decay_norm_and_bias
        )
        if not 0.0 < mask_prob < 1.0:
            raise ValueError(f"task.module.mask_prob must be in (0, 1), got {mask_prob!r}")
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"], logger=False)
        self.vocab_size, self.mask_index, self.mask_prob = vocab_size, mask_index, mask_prob
        self.metrics = nn.ModuleDict(
            {
                f"{split}_{name}": WeightedMean()
                for split in ("val", "test")
                for name in ("loss", "acc")
            }
        )

    def corrupt(
        self, tokens: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, T) -> inputs (B, T) with the chosen tokens corrupted, targets (B, T): the
        original token where chosen, IGNORE elsewhere."""
        draw = lambda: torch.rand(tokens.shape, device=tokens.device, generator=generator)  # noqa: E731
        chosen, action = draw() < self.mask_prob, draw()
        noise = torch.randint(
            self.vocab_size, tokens.shape, device=tokens.device, generator=generator
        )
        inputs = torch.where(chosen & (action < 0.8), self.mask_index, tokens)
        inputs = torch.where(chosen & (action >= 0.8) & (action < 0.9), noise, inputs)
        return inputs, torch.where(chosen, tokens, IGNORE)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.net(tokens)  # (B, T, vocab) logits

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        tokens, _ = batch  # a corpus batch is (x, y); the masked model needs x only
        inputs, targets = self.corrupt(tokens)
        logits = self(inputs).flatten(0, 1)  # (B*T, vocab)
        # Mean over the chosen positions (sum / count: no NaN when a tiny batch has none).
        total = F.cross_entropy(logits, targets.flatten(), ignore_index=IGNORE, reduction="sum")
        loss = total / (targets != IGNORE).sum().clamp(min=1)
        self.log_train_loss(loss, len(tokens))
        return loss

    def _evaluate(self, batch: Any, batch_idx: int, split: str) -> None:
        tokens, _ = batch
        g = torch.Generator(device=tokens.device).manual_seed(derive_seed(batch_idx))
        inputs, targets = self.corrupt(tokens, g)
        logits = self(inputs)  # (B, T, vocab)
        # Means over the chosen positions as weights (0 elsewhere): no boolean indexing, whose
        # data-dependent shape would make the host wait for the device every batch.
        chosen = (targets != IGNORE).float()  # (B, T)
        losses = F.cross_entropy(
            logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="none"
        ).view_as(chosen)
        self.metrics[f"{split}_loss"].update(losses, weight=chosen)
        hits = (logits.argmax(-1) == targets).float()
        self.metrics[f"{split}_acc"].update(hits, weight=chosen)

    def _log_split(self, split: str) -> None:
        for name, key in (("loss", "loss"), ("acc", "masked_acc")):
            metric = self.metrics[f"{split}_{name}"]
            self.log(f"{split}/{key}", metric.compute(), prog_bar=split == "val")
            metric.reset()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def on_validation_epoch_end(self) -> None:
        self._log_split("val")

    def on_test_epoch_end(self) -> None:
        self._log_split("test")
