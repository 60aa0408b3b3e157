"""The exact mean of an evaluation split: every val/ and test/ mean a module logs goes through here.

Not torchmetrics' MeanMetric: with nan_strategy="disable" (1.9.0) it replaces the weight by ones,
and its other strategies read every batch's values on the host to look for NaNs. Here a NaN
stays in the sum, so a diverged model's loss shows as NaN; the sums add across DDP ranks.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric


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
