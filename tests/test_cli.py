"""The command line end to end: python train.py on fixture data, as a user runs it."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, fixture_overrides


@pytest.mark.slow
def test_train_py_writes_a_complete_run_directory(data_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    env = {**os.environ, "WANDB_MODE": "offline"}
    env.pop("WANDB_API_KEY", None)
    args = [*fixture_overrides("cifar10", data_root), "model=resnet", "model.width=8", "model.blocks=[1,1]",
            "optim=adamw", "trainer.max_epochs=2", "trainer.log_every_n_steps=5", "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}"]  # fmt: skip
    out = subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]

    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "finished" and results["epochs"] == 2
    assert results["best"]["epoch"] in (0, 1) and "val/acc" in results["best"]
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert "optim=adamw" in (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert {"best.ckpt", "last.ckpt", "wandb_id.txt"} <= {
        p.name for p in (run_dir / "checkpoints").iterdir()
    }
    with open(run_dir / "metrics.csv") as f:
        columns = set(next(csv.reader(f)))
    assert {
        "train/loss",
        "val/acc",
        "val/f1",
        "val/auroc",
        "test/acc",
        "train/lr",
        "train/grad_norm",
    } <= columns

    # W&B logged offline into the run directory, under the id saved beside the checkpoints,
    # with the resolved config and the overrides.
    wandb_id = (run_dir / "checkpoints" / "wandb_id.txt").read_text().strip()
    offline = list((run_dir / "wandb").glob(f"offline-run-*-{wandb_id}/run-{wandb_id}.wandb"))
    assert len(offline) == 1
    record = offline[0].read_bytes()
    assert b"torch.optim.AdamW" in record and b"optim=adamw" in record
