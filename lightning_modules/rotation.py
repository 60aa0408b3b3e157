"""Self-supervised rotation prediction (Gidaris et al., 2018, "Unsupervised Representation
Learning by Predicting Image Rotations"): every image is shown at 0, 90, 180 and 270 degrees and
the network names the rotation. The data's labels are never used.

The network's own head is replaced by a 4-way one; its encoder is what fine-tuning reuses.
Logged names: train/loss (per step), train/rot_acc (per epoch), val/{loss,rot_acc},
test/{loss,rot_acc}, plus train/lr and train/grad_norm.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from lightning_modules.base import TrainingModule, WeightedMean
from optim.optimizer import OptimizerFactory, SchedulerFactory

ROTATIONS = 4  # label k means rotated by k * 90 degrees, counter-clockwise


def rotate_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, H, W) square images -> all four rotations (4B, C, H, W) and their labels (4B,):
    the first B are unrotated (label 0), the next B turned 90 degrees (label 1), and so on."""
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"rotation prediction needs square images, got {tuple(x.shape[-2:])}")
    rotated = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(ROTATIONS)])
    labels = torch.arange(ROTATIONS, device=x.device).repeat_interleave(len(x))
    return rotated, labels


class RotationPrediction(TrainingModule):
    input_kind: ClassVar[str] = "image"  # rotates its inputs: images only (harness.config.checks)

    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        *,
        monitor: str = "val/rot_acc",
        decay_norm_and_bias: bool = False,
    ) -> None:
        super().__init__(
            net, optimizer, scheduler, monitor=monitor, decay_norm_and_bias=decay_norm_and_bias
        )
        # Plain values only: the checkpoint must load with torch.load(weights_only=True).
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"], logger=False)
        net.head = nn.Linear(net.head.in_features, ROTATIONS)
        self.train_acc = MulticlassAccuracy(ROTATIONS, average="micro")
        self.val_acc = MulticlassAccuracy(ROTATIONS, average="micro")
        self.test_acc = MulticlassAccuracy(ROTATIONS, average="micro")
        self.eval_loss = nn.ModuleDict({split: WeightedMean() for split in ("val", "test")})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, 4) rotation logits

    def _step(self, batch: Any, split: str, acc: MulticlassAccuracy) -> torch.Tensor:
        x, y = rotate_batch(batch[0])  # the data's own labels (batch[1]) are ignored
        logits = self(x)
        losses = F.cross_entropy(logits, y, reduction="none")  # (4B,)
        acc.update(logits, y)
        if split == "train":
            self.log_train_loss(losses.mean(), len(y))
        else:  # the exact mean over the split and over DDP ranks, as the classifier's
            loss = self.eval_loss[split]
            loss.update(losses)
            self.log(f"{split}/loss", loss, on_step=False, on_epoch=True)
        self.log(f"{split}/rot_acc", acc, on_step=False, on_epoch=True, prog_bar=split == "val",
                 batch_size=len(y))  # fmt: skip
        return losses.mean()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train", self.train_acc)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val", self.val_acc)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test", self.test_acc)
