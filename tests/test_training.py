"""Every (data, model) pair, optimizer and scheduler trains on fixture data with a finite loss
that goes down; a model can overfit one batch; the same seed gives the same losses."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from harness.run.recipe import train
from harness.rundir.files import read_results
from tests.conftest import FAST, compose, fixture_overrides

DATA = ["cifar10", "mnist", "fashion_mnist", "digits"]
MODELS = ["resnet", "cnn", "mlp"]
OPTIMS = ["sgd", "momentum", "nesterov", "adam", "adamw", "adagrad", "adadelta", "rmsprop", "muon"]
SCHEDULERS = ["constant", "cosine", "warmup_cosine", "step", "onecycle", "plateau"]
SMALL_RESNET = ["model.width=8", "model.blocks=[1,1]"]  # same code, a fraction of the compute


def train_losses(run_dir: Path) -> list[float]:
    with open(run_dir / "metrics.csv") as f:
        return [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]


def run(tmp_path: Path, overrides: list[str]) -> tuple[dict, list[float]]:
    cfg = compose([*FAST, *overrides])
    results = train(cfg, tmp_path)
    return results, train_losses(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("model", MODELS)
def test_every_data_model_pair_trains(
    data: str, model: str, data_root: Path, tmp_path: Path
) -> None:
    extra = SMALL_RESNET if model == "resnet" else []
    results, losses = run(tmp_path, [*fixture_overrides(data, data_root), f"model={model}", *extra,
                                     "trainer.max_steps=10", "trainer.overfit_batches=1",
                                     "optim=adam", "optim.lr=1e-3", "scheduler=constant"])  # fmt: skip
    assert results["status"] == "finished"
    assert len(losses) == 10 and all(math.isfinite(x) for x in losses)
    assert max(losses[-3:]) < losses[0]
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert read_results(tmp_path)["test/acc"] == results["test/acc"]


@pytest.mark.slow
@pytest.mark.parametrize("optim", OPTIMS)
def test_every_optimizer_lowers_the_loss(optim: str, tmp_path: Path) -> None:
    # One repeated batch: whether the optimizer descends is then not hidden by batch noise.
    lrs = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.05, "adadelta": 1.0}
    lr = lrs.get(optim, 3e-3)
    _results, losses = run(tmp_path, ["data=digits", "model=mlp", f"optim={optim}", f"optim.lr={lr}",
                                     "scheduler=constant", "trainer.max_steps=15", "trainer.overfit_batches=1",
                                     "model.dropout=0"])  # fmt: skip
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_scheduler_trains(scheduler: str, tmp_path: Path) -> None:
    results, losses = run(tmp_path, ["data=digits", "model=mlp", f"scheduler={scheduler}", "trainer.max_steps=12",
                                     "trainer.overfit_batches=1", "model.dropout=0", "optim.lr=3e-3"])  # fmt: skip
    assert results["status"] == "finished"
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]


@pytest.mark.slow
def test_model_overfits_one_batch(tmp_path: Path) -> None:
    _results, losses = run(tmp_path, ["data=digits", "model=cnn", "optim=adam", "optim.lr=3e-3", "scheduler=constant",
                                     "trainer.max_steps=60", "trainer.overfit_batches=1", "model.dropout=[0,0]",
                                     "trainer.max_epochs=-1"])  # fmt: skip
    assert losses[-1] < 0.05, losses[-5:]


@pytest.mark.slow
def test_same_seed_same_losses_other_seed_other_losses(tmp_path: Path) -> None:
    args = ["data=digits", "model=cnn", "trainer.max_steps=8"]
    _, a = run(tmp_path / "a", [*args, "seed=3"])
    _, b = run(tmp_path / "b", [*args, "seed=3"])
    _, c = run(tmp_path / "c", [*args, "seed=4"])
    assert a == b
    assert a != c


def test_checkpoints_hold_plain_values_only(tmp_path: Path) -> None:
    run(tmp_path, ["data=digits", "model=cnn", "optim=adamw"])
    for name in ("best.ckpt", "last.ckpt"):
        ckpt = torch.load(
            tmp_path / "checkpoints" / name, weights_only=True
        )  # raises on pickled objects
        assert ckpt["config"]["optim"]["_target_"] == "torch.optim.AdamW"
        assert ckpt["hyper_parameters"]["num_classes"] == 10


@pytest.mark.slow
def test_resume_from_checkpoint_continues_the_step_count(tmp_path: Path) -> None:
    first, _ = run(tmp_path, ["data=digits", "model=mlp", "trainer.max_steps=4"])
    assert first["steps"] == 4
    resumed, _ = run(
        tmp_path, ["data=digits", "model=mlp", "trainer.max_steps=8", "ckpt_path=last"]
    )
    assert resumed["steps"] == 8
    with open(tmp_path / "metrics.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f) if r.get("train/loss")]
    assert steps == sorted(set(steps)) and steps[-1] == 7  # appended, not restarted
