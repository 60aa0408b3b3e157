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
from torchmetrics.utilities.compute import _safe_divide

from lightning_modules.base import TrainingModule, WeightedMean
from optim.optimizer import OptimizerFactory, SchedulerFactory


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
        # validate_args=False: some of torchmetrics' input checks read values on the host (AUROC
        # counts the distinct labels: a device sync per step); cross_entropy checks the labels.
        # train/acc from two counts, right (on the device) and seen (on the host), added to every
        # step: what torchmetrics' MulticlassAccuracy(average="micro") computes, without its
        # per-update bookkeeping (50 us a step against 9 on a CPU). Not in the state_dict (its keys
        # stay those of earlier runs): checkpoints keep them under "train_counts", for a resume
        # mid-epoch.
        self.register_buffer("train_right", torch.zeros((), dtype=torch.long), persistent=False)
        self.train_seen = 0
        metrics = MetricCollection(
            {
                "acc": MulticlassAccuracy(num_classes, average="micro", validate_args=False),
                "f1": MulticlassF1Score(num_classes, average="macro", validate_args=False),
                # macro one-vs-rest; softmax of the logits
                "auroc": MulticlassAUROC(num_classes, validate_args=False),
            }
        )
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        # The mean loss over every sample of the split, summed across DDP ranks exactly. (Lightning's
        # self.log(..., sync_dist=True) divides the summed sample count by the world size in integer
        # arithmetic, which is off when the split does not divide evenly between ranks.)
        self.val_loss = WeightedMean()
        self.test_loss = WeightedMean()

    def forward(self, x: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        # Images come as one tensor; sentences as (tokens, lengths).
        return self.net(*x) if isinstance(x, (tuple, list)) else self.net(x)  # (B, num_classes)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        self.train_right += (logits.argmax(1) == y).sum()  # train/acc, logged per epoch
        self.train_seen += len(y)
        self.log_train_loss(loss, len(y))
        return loss

    def on_train_epoch_end(self) -> None:
        # Once per epoch: every self.log call costs Lightning a walk over its bookkeeping, a
        # noticeable share of a short step. Summed over DDP ranks, as torchmetrics would.
        counts = torch.stack([self.train_right, torch.full_like(self.train_right, self.train_seen)])
        right, seen = self.trainer.strategy.reduce(counts, reduce_op="sum")
        self.log("train/acc", _safe_divide(right, seen))
        self.train_right.zero_()
        self.train_seen = 0

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["train_counts"] = [int(self.train_right), self.train_seen]  # plain ints

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        counts = checkpoint.get("train_counts")
        # Earlier checkpoints kept torchmetrics' states instead (harness.run.callbacks.MetricStates)
        legacy = checkpoint.get("metric_states", {}).get("train_acc", {}).get("states")
        if counts is None and legacy is not None:
            right = int(legacy["tp"].sum())
            counts = [right, right + int(legacy["fn"].sum())]
        if counts is not None:
            self.train_right.fill_(counts[0])
            self.train_seen = counts[1]

    def _evaluate(
        self, batch: Any, split: str, metrics: MetricCollection, loss: WeightedMean
    ) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        # Per sample, unsmoothed: comparable across label_smoothing values.
        loss.update(F.cross_entropy(logits, y, reduction="none"))  # (B,)
        metrics.update(logits, y)
        self.log(f"{split}/loss", loss, on_step=False, on_epoch=True)
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=split == "val")
        return logits  # (B, num_classes), for callbacks (a confusion matrix without a second pass)

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "val", self.val_metrics, self.val_loss)

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "test", self.test_metrics, self.test_loss)
