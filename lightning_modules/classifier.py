"""Classification of images or sentences: cross-entropy; accuracy, macro F1 and AUROC.

Logged names: train/loss (per step), train/acc (per epoch), val/{loss,acc,f1,auroc} and
test/{loss,acc,f1,auroc} (per evaluation), plus train/lr and train/grad_norm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassAUROC, MulticlassF1Score

from lightning_modules.base import OptimizerFactory, SchedulerFactory, TrainingModule


class Classifier(TrainingModule):
    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        *,
        num_classes: int,
        monitor: str = "val/acc",
        label_smoothing: float = 0.0,
        decay_norm_and_bias: bool = False,
        class_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(
            net, optimizer, scheduler, monitor=monitor, decay_norm_and_bias=decay_norm_and_bias
        )
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                f"task.module.label_smoothing must be in [0, 1), got {label_smoothing!r}"
            )
        # Plain values only: the checkpoint must load with torch.load(weights_only=True).
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"], logger=False)
        self.label_smoothing = label_smoothing
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        metrics = MetricCollection(
            {
                "acc": MulticlassAccuracy(num_classes, average="micro"),
                "f1": MulticlassF1Score(num_classes, average="macro"),
                "auroc": MulticlassAUROC(num_classes),  # macro one-vs-rest; softmax of the logits
            }
        )
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    def forward(self, x: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        # Images come as one tensor; sentences as (tokens, lengths).
        return self.net(*x) if isinstance(x, (tuple, list)) else self.net(x)  # (B, num_classes)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        self.train_acc(logits, y)
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=len(y))
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def _evaluate(self, batch: Any, split: str, metrics: MetricCollection) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)  # unsmoothed: comparable across label_smoothing values
        metrics.update(logits, y)
        self.log(f"{split}/loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=split == "val")
        return logits  # (B, num_classes), for callbacks (a confusion matrix without a second pass)

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "test", self.test_metrics)
