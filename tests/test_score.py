"""One score per run: best/<monitor> is the monitored metric at the validation whose checkpoint is
tested, and results.json, the W&B summary, metrics.csv and the sweep report all give the same one.

The runs of the issue's example (and Hydra multirun) are marked slow; the callback's agreement
with Lightning's ModelCheckpoint is checked on scripted validation values in a second."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel

from harness.metrics_log import RunCSVLogger
from harness.results import BestMetrics
from harness.sweep.history import read_history

NAN = math.nan


class Scripted(BoringModel):
    """Logs val/score = values[i] at its i-th validation, and val/other = i."""

    def __init__(self, values: list[float]) -> None:
        super().__init__()
        self.values, self.i = values, 0

    def validation_step(self, batch, batch_idx):
        return None

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        self.log("val/score", torch.tensor(self.values[self.i]))
        self.log("val/other", float(self.i))
        self.i += 1


def _fit(tmp_path: Path, values: list[float], mode: str, **trainer: object):
    ckpt = ModelCheckpoint(tmp_path / "ck", "best", monitor="val/score", mode=mode, save_top_k=1)
    best = BestMetrics("val/score", mode)
    L.Trainer(
        default_root_dir=tmp_path,
        logger=RunCSVLogger(tmp_path),
        callbacks=[best, ckpt],
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=1,
        **trainer,
    ).fit(Scripted(values))
    saved = torch.load(ckpt.best_model_path, weights_only=True)
    return best, ckpt, saved


CASES = [
    ([0.5, 0.7, 0.7, 0.6, 0.7], "max"),  # ties: the first 0.7 is kept
    ([NAN, 0.2, 0.2, NAN, 0.1], "max"),  # NaN first: the checkpoint keeps it until beaten
    ([0.9, 0.4, 0.4, 0.5, 0.4], "min"),
    ([math.inf, 0.3, math.inf, 0.3], "min"),
]


@pytest.mark.parametrize("values,mode", CASES)
@pytest.mark.parametrize("every", ["steps", "epoch"])
def test_best_is_the_validation_the_checkpoint_kept(
    tmp_path: Path, values: list[float], mode: str, every: str
) -> None:
    # by steps: the checkpoint decides at validation end; by epoch: at the train epoch's end
    sizing = (
        dict(max_steps=8 * len(values), val_check_interval=8, max_epochs=-1, limit_train_batches=64)
        if every == "steps"
        else dict(max_epochs=len(values), limit_train_batches=4)
    )
    best, ckpt, saved = _fit(tmp_path, values, mode, **sizing)
    assert best.best["step"] == saved["global_step"]
    assert best.best["val/other"] == values.index(
        (max if mode == "max" else min)(v for v in values if not math.isnan(v))
    )
    assert best.scores()["best/val/score"] == pytest.approx(float(ckpt.best_model_score))
    # a history series: one best/ row per validation, at the step of that validation's val/ row
    rows = read_history(tmp_path)
    val_steps = [r["step"] for r in rows if "val/other" in r]
    best_rows = [r for r in rows if "best/val/score" in r]
    assert [r["step"] for r in best_rows][-2:] == val_steps[-2:]
    assert best_rows[-1]["best/val/other"] == best.best["val/other"]
    times = [r["time/train_s"] for r in rows if "time/train_s" in r]
    assert len(times) == len(values) and times == sorted(times) and times[0] > 0
