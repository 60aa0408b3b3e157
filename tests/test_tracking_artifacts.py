"""logger.wandb.log_model=best|all: checkpoints become W&B model artifacts (aliases best and
latest, the score in the metadata), staged inside the offline run's folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import FAST, ROOT, compose
from tests.wandb_files import artifacts

RUN = [o for o in FAST if not o.startswith("logger.wandb")] + [
    "data=digits", "model=mlp", "optim=adam", "optim.lr=3e-3", "trainer.max_steps=12",
    "trainer.val_check_interval=3", "logger.wandb.mode=offline",
]  # fmt: skip


def _train():
    from harness.run.recipe import train

    return train


def logged(run_dir: Path) -> list[dict]:
    (path,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    return artifacts(path)


def assert_staged_in_the_run(artifact: dict, run_dir: Path) -> None:
    (local,) = artifact["files"].values()
    assert list(artifact["files"]) == ["model.ckpt"]
    assert Path(local).is_relative_to(run_dir / "wandb" / "artifacts" / "staging")
    ckpt = torch.load(local, weights_only=True)  # a real checkpoint, loadable safely
    assert "state_dict" in ckpt


@pytest.mark.slow
def test_log_model_best_logs_the_best_checkpoint_once_with_its_score(tmp_path: Path) -> None:
    results = _train()(compose([*RUN, "logger.wandb.log_model=best"]), tmp_path)
    assert results["status"] == "finished"
    (artifact,) = logged(tmp_path)
    run_id = (tmp_path / "checkpoints" / "wandb_id.txt").read_text().strip()
    assert artifact["name"] == f"model-{run_id}" and artifact["type"] == "model"
    assert sorted(artifact["aliases"]) == ["best", "latest"]
    meta = artifact["metadata"]
    assert meta["score"] == pytest.approx(results["best"]["val/acc"])
    assert meta["ModelCheckpoint"]["monitor"] == "val/acc"
    assert meta["ModelCheckpoint"]["mode"] == "max"
    assert_staged_in_the_run(artifact, tmp_path)


@pytest.mark.slow
def test_log_model_all_logs_every_new_best(tmp_path: Path) -> None:
    results = _train()(compose([*RUN, "logger.wandb.log_model=all"]), tmp_path)
    found = logged(tmp_path)
    assert len(found) >= 2  # this recipe improves at more than one of its 4 checks
    scores = [a["metadata"]["score"] for a in found]
    assert scores == sorted(scores) and len(set(scores)) == len(scores)  # each better than the last
    assert scores[-1] == pytest.approx(results["best"]["val/acc"])
    assert all(sorted(a["aliases"]) == ["best", "latest"] for a in found)
    for a in found:
        assert_staged_in_the_run(a, tmp_path)


@pytest.mark.slow
def test_no_artifact_by_default(tmp_path: Path) -> None:
    _train()(compose(RUN), tmp_path)
    assert logged(tmp_path) == []


def test_a_bad_log_model_value_is_one_line_and_status_2(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "train.py", *RUN, "logger.wandb.log_model=true",
                          f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "error: logger.wandb.log_model must be false, best or all (checkpoints as W&B "
        "artifacts), got True"
    )
    assert not (tmp_path / "run").exists()
