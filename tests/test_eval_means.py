"""val/ and test/ losses are exact means over the split's tokens, batches of any size.

torchmetrics' MeanMetric(nan_strategy="disable") drops the weight it is given (1.9.0 sets it to
ones), so a per-batch mean weighted by the batch's token count became a mean of batch means, and
the masked LM's means over the chosen positions became means over every position.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from datamodules.tensor_loader import derive_seed
from lightning_modules.base import WeightedMean
from lightning_modules.language_model import LanguageModel
from lightning_modules.masked_lm import IGNORE, MaskedLM

VOCAB = 7


def tiny_lm() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Embedding(VOCAB, 8), nn.Linear(8, VOCAB))  # (B, T) -> (B, T, V)


def batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Three batches of 4, 4 and 1 blocks of 5 tokens: the last one much smaller."""
    g = torch.Generator().manual_seed(1)
    return [
        (torch.randint(VOCAB, (b, 5), generator=g), torch.randint(VOCAB, (b, 5), generator=g))
        for b in (4, 4, 1)
    ]


def validate(module: L.LightningModule) -> dict[str, float]:
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    loader = DataLoader(batches(), batch_size=None)  # the batches as they are
    return trainer.validate(module, dataloaders=loader, verbose=False)[0]


def optimizer(params):
    return torch.optim.SGD(params, lr=0.1)


def test_language_model_val_loss_is_the_mean_over_every_token() -> None:
    module = LanguageModel(tiny_lm(), optimizer, vocab=list("abcdefg"), block_size=5, samples=0)
    with torch.no_grad():
        total = sum(
            F.cross_entropy(module(x).flatten(0, 1), y.flatten(), reduction="sum")
            for x, y in batches()
        )
    expected = total.item() / sum(y.numel() for _, y in batches())
    assert validate(module)["val/loss"] == pytest.approx(expected, rel=1e-6)


def test_masked_lm_val_means_are_over_the_chosen_positions_only() -> None:
    module = MaskedLM(tiny_lm(), optimizer, vocab_size=VOCAB, mask_index=VOCAB - 1, mask_prob=0.3)
    losses, hits, chosen = 0.0, 0.0, 0
    with torch.no_grad():
        for i, (tokens, _) in enumerate(batches()):
            g = torch.Generator().manual_seed(derive_seed(i))
            inputs, targets = module.corrupt(tokens, g)
            logits = module(inputs)
            keep = targets != IGNORE
            losses += F.cross_entropy(logits[keep], targets[keep], reduction="sum").item()
            hits += (logits.argmax(-1)[keep] == targets[keep]).sum().item()
            chosen += int(keep.sum())
    logged = validate(module)
    assert logged["val/loss"] == pytest.approx(losses / chosen, rel=1e-6)
    assert logged["val/masked_acc"] == pytest.approx(hits / chosen, rel=1e-6)


def test_weighted_mean_weighs_and_stays_nan_when_a_value_is_nan() -> None:
    mean = WeightedMean()
    mean.update(torch.tensor(1.0), weight=3)
    mean.update(torch.tensor([2.0, 4.0]), weight=torch.tensor([1.0, 0.0]))
    assert mean.compute().item() == pytest.approx(5.0 / 4.0)
    mean.update(torch.tensor(float("nan")))
    assert torch.isnan(mean.compute())  # a diverged model's loss stays visible
