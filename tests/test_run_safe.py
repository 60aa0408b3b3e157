"""What no command can damage (issue 13, the run side): a finished run is never overwritten, a
run killed at any moment resumes into the same W&B run and the same results, bad input is one
line with nothing written, and two processes never share a run directory."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# digits with a small MLP: a run of a few steps takes seconds on a CPU.
QUICK = ["data=digits", "model=mlp", "callbacks=sweep", "logger.wandb=null",
         "trainer.max_epochs=-1", "trainer.max_steps=6", "trainer.log_every_n_steps=1",
         "trainer.limit_val_batches=2", "trainer.limit_test_batches=2",
         "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]  # fmt: skip


def cli(*args: str, **popen: object) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "train.py", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)  # fmt: skip


def run(*args: str, timeout: float = 300) -> tuple[int, str]:
    child = cli(*args)
    _, err = child.communicate(timeout=timeout)
    return child.returncode, err


def digest(folder: Path) -> dict[str, str]:
    """Every file under folder (hidden ones too: .hydra/*.yaml), by its sha256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


@pytest.mark.slow
def test_a_finished_run_refuses_another_runs_checkpoint_and_stays_byte_for_byte(
    tmp_path: Path,
) -> None:
    finished, other = tmp_path / "finished", tmp_path / "other"
    status, err = run(*QUICK, f"hydra.run.dir={finished}")
    assert status == 0, err[-2000:]
    shutil.copytree(finished, other)  # another run with a checkpoint that fits
    before = digest(finished)
    assert ".hydra/config.yaml" in before and "train.log" in before
    status, err = run(*QUICK, "optim.lr=0.01", f"hydra.run.dir={finished}",
                      f"ckpt_path={other}/checkpoints/last.ckpt")  # fmt: skip
    assert status == 2, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "finished" in lines[0], err
    assert digest(finished) == before
