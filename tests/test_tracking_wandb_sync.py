"""A run killed and resumed has two offline W&B folders with one id; together they hold every
logged step once, in order, and one `wandb sync --id` call (oldest first) uploads them as one
run. (The upload itself needs a server: here, the files and the command line.)"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from harness.rundir.files import logged_rows
from harness.tracking import wandb_sync
from tests.conftest import FAST, ROOT
from tests.wandb_files import history_rows


def _train(run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    fast = [o for o in FAST if not o.startswith("logger.wandb")]
    args = [*fast, "data=digits", "model=mlp", "trainer.max_steps=12", "checkpoint_every_n_steps=3",
            "logger.wandb.mode=offline", f"hydra.run.dir={run_dir}", *extra]  # fmt: skip
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run stopped by SIGTERM after step 7 and resumed by the same command."""
    run_dir = tmp_path_factory.mktemp("resumed") / "run"
    marker = run_dir.parent / "signalled"
    kill = (f"+callbacks.kill={{_target_:tests.probes.SignalAt,signal:SIGTERM,step:7,"
            f"marker:'{marker}'}}")  # fmt: skip
    first = _train(run_dir, kill)
    assert first.returncode == 130, first.stderr[-2000:]
    second = _train(run_dir, kill)
    assert second.returncode == 0, second.stderr[-2000:]
    return run_dir


@pytest.mark.slow
def test_segments_hold_every_step_once_in_order(resumed: Path) -> None:
    found = wandb_sync.segments(resumed)
    assert len(found) == 2
    assert found[0].start < found[1].start
    first, second = found[0].steps, found[1].steps
    assert first and second and first[-1] <= second[0]  # the second goes on where the first ended
    assert first + second == sorted(first + second)
    wandb_id = wandb_sync.run_id(resumed)
    rows = Counter(row for s in found for row in history_rows(s.folder / f"run-{wandb_id}.wandb"))
    assert rows == logged_rows(resumed / "metrics.csv")  # every metrics.csv row, once
    wandb_sync.check_order(found)


@pytest.mark.slow  # the module's resumed run: a 17 s fixture
def test_the_sync_command_uploads_every_segment_into_one_run(
    resumed: Path, capsys: pytest.CaptureFixture
) -> None:
    wandb_id = wandb_sync.run_id(resumed)
    found = wandb_sync.segments(resumed)
    command = wandb_sync.sync_command(resumed)
    assert command == ["wandb", "sync", "--id", wandb_id, "--project", "research-harness",
                       str(found[0].folder), str(found[1].folder)]  # fmt: skip
    assert wandb_sync.main([str(resumed)]) == 0
    assert capsys.readouterr().out.split() == command
    # wandb's own CLI accepts it (--dry-run: lists what it would upload, contacts nothing)
    out = subprocess.run([*command, "--dry-run"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "WANDB_MODE": "offline"})  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert all(f.folder.name in out.stdout + out.stderr for f in found)


@pytest.mark.slow  # the module's resumed run: a 17 s fixture
def test_overlapping_attempts_are_refused(resumed: Path) -> None:
    first, second = wandb_sync.segments(resumed)
    second.steps.insert(0, first.steps[-1] - 1)
    with pytest.raises(ValueError, match="the attempts overlap"):
        wandb_sync.check_order([first, second])


def test_a_directory_without_wandb_is_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert wandb_sync.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "wandb_id.txt" in err
