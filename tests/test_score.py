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

from harness.run.best import BestMetrics
from harness.rundir.files import read_history
from harness.tracking.loggers import RunCSVLogger

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
    times = [r["perf/train_s"] for r in rows if "perf/train_s" in r]
    assert len(times) == len(values) and times == sorted(times) and times[0] > 0


# The example run, cut to its first two validations (a constant learning rate: the same
# trajectory): val/acc 0.868 at step 40, then 0.47, so the last value is below the best.
EXAMPLE = ["experiment=cpu_digits", "optim=momentum", "optim.lr=0.1", "scheduler=constant",
           "callbacks=sweep", "seed=0", "trainer.max_steps=80", "trainer.enable_progress_bar=false"]  # fmt: skip


def _train(args: list[str], tmp_path: Path, wandb: str = "disabled", timeout: int = 600):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {**os.environ, "WANDB_MODE": wandb}
    env.pop("WANDB_API_KEY", None)
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


@pytest.fixture(scope="module")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("example") / "run"
    out = _train([*EXAMPLE, f"hydra.run.dir={run_dir}"], run_dir.parent, wandb="offline")
    assert out.returncode == 0, out.stderr[-3000:]
    return run_dir


def _best_validation(run_dir: Path) -> dict[str, float]:
    """The val/ row of metrics.csv with the largest val/acc (the first of equal ones)."""
    rows = [r for r in read_history(run_dir) if "val/acc" in r]
    assert rows[-1]["val/acc"] < max(r["val/acc"] for r in rows)  # the case this guards
    return max(rows, key=lambda r: (r["val/acc"], -r["step"]))


@pytest.mark.slow
def test_results_json_scores_the_best_validation_and_tests_its_checkpoint(
    example_run: Path,
) -> None:
    import json

    results = json.loads((example_run / "results.json").read_text())
    best = _best_validation(example_run)
    for name in ("val/acc", "val/loss", "val/f1"):
        assert results[f"best/{name}"] == pytest.approx(best[name], rel=1e-6)
    last = [r for r in read_history(example_run) if "val/acc" in r][-1]
    assert results["val/acc"] == pytest.approx(last["val/acc"])  # the last value, by its name
    # the tested checkpoint is the one saved at that validation (a val row at step k: k+1 steps)
    ckpt = torch.load(example_run / results["best_checkpoint"], weights_only=True)
    assert ckpt["global_step"] == best["step"] + 1 == results["best"]["step"]
    assert "test/acc" in results


@pytest.mark.slow
def test_the_wandb_summary_holds_the_same_score(example_run: Path) -> None:
    import json

    from tests.wandb_files import summary

    (path,) = example_run.glob("wandb/offline-run-*/run-*.wandb")
    got = summary(path)
    results = json.loads((example_run / "results.json").read_text())
    best = _best_validation(example_run)
    assert got["best/val/acc"] == pytest.approx(best["val/acc"], rel=1e-6)
    for key in ("best/val/acc", "best/val/loss", "test/acc", "test/loss", "val/acc"):
        assert got[key] == pytest.approx(results[key], rel=1e-6), key


@pytest.mark.slow
def test_the_report_on_the_run_gives_the_same_score(example_run: Path, tmp_path: Path) -> None:
    import json

    from harness.report.local import read_local
    from harness.report.sweep_page import write_report

    write_report(read_local(example_run), tmp_path)
    (row,) = json.loads((tmp_path / "report.json").read_text())["tables"]["best_setting"]
    results = json.loads((example_run / "results.json").read_text())
    assert row["metric"] == "best/val/acc"
    assert row["validation"]["mean"] == pytest.approx(_best_validation(example_run)["val/acc"])
    assert row["test"]["mean"] == pytest.approx(results["test/acc"])


@pytest.mark.slow
def test_a_multirun_runs_every_job_and_exits_nonzero_only_if_one_did_not_finish(
    tmp_path: Path,
) -> None:
    import json

    fast = ["experiment=cpu_digits", "optim=sgd", "callbacks=[]", "trainer.max_steps=40",
            "trainer.enable_progress_bar=false", "logger.wandb=null"]  # fmt: skip
    sweep_dir = tmp_path / "multi"
    out = _train(["-m", *fast, "optim.lr=1e30,0.001", f"hydra.sweep.dir={sweep_dir}"], tmp_path)
    runs = sorted(p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir())
    statuses = [json.loads((p / "results.json").read_text())["status"] for p in runs]
    assert statuses == ["diverged", "finished"], out.stderr[-3000:]
    assert out.returncode != 0  # one job did not finish
    out = _train(["-m", *fast, "optim.lr=0.001,0.01", f"hydra.sweep.dir={tmp_path / 'ok'}"], tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]


@pytest.mark.slow
def test_a_four_trial_optuna_search_on_digits_reports_its_best_trial(tmp_path: Path) -> None:
    import json

    import yaml

    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep_dir = tmp_path / "optuna"
    out = _train(["-m", "hydra/sweeper=optuna_lr", "hydra.sweeper.n_trials=4", "experiment=cpu_digits",
                  "optim=adam", "callbacks=[]", "trainer.max_steps=40", "trainer.enable_progress_bar=false",
                  "logger.wandb=null", f"hydra.sweep.dir={sweep_dir}"], tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    runs = sorted(p for p in sweep_dir.iterdir() if (p / "results.json").is_file())
    assert len(runs) == 4
    scores = {p: json.loads((p / "results.json").read_text())["best/val/acc"] for p in runs}
    found = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    best = max(scores, key=scores.get)
    assert found["best_value"] == pytest.approx(scores[best])
    lr = yaml.safe_load((best / ".hydra" / "config.yaml").read_text())["optim"]["lr"]
    assert found["best_params"]["optim.lr"] == pytest.approx(lr)
