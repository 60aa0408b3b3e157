"""Kill a run and resume it: on a CPU with a fixed seed it ends with the same metrics.csv (every
row once, same values), the same results and the same W&B run as a run never interrupted.

The run is small (digits, MLP with dropout, 20 batches an epoch, 30 steps: mid-epoch and
epoch-end resume points) and saves last.ckpt every 5 steps, so that kills land between
checkpoints and steps are replayed after a resume.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

from harness.run.recipe import train
from harness.rundir.files import logged_rows, read_metrics
from tests.conftest import ROOT, compose
from tests.wandb_files import history_rows

ARGS = ["data=digits", "model=mlp", "data.batch_size=64", "trainer.max_epochs=-1",
        "trainer.max_steps=30", "trainer.log_every_n_steps=1", "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false", "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=2", "checkpoint_every_n_steps=5"]  # fmt: skip
NO_WANDB = "logger.wandb=null"


@pytest.fixture(autouse=True)
def one_thread():
    """Identical floating-point results need the same thread count in this process and in the
    runs it starts (OMP_NUM_THREADS=1 there)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    """The uninterrupted run: its results and its metrics.csv."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    run_dir = tmp_path_factory.mktemp("reference")
    results = train(compose([*ARGS, NO_WANDB]), run_dir)
    torch.set_num_threads(threads)
    return results, computed(run_dir / "metrics.csv")


def computed(path: Path) -> list[dict[str, str]]:
    """metrics.csv's rows without the perf/ columns (wall-clock speed and memory, which no two
    runs share): every other value is a function of the seed and must repeat exactly."""
    _, rows = read_metrics(path)
    return [{k: v for k, v in row.items() if not k.startswith("perf/")} for row in rows]


def kill_arg(sig: str, step: int, run_dir: Path, hook: str = "train_batch_end") -> str:
    """A probe that sends `sig` at `step`, once: the same config then resumes to the end."""
    marker = run_dir.parent / f"{run_dir.name}-signalled"
    return (f"+callbacks.kill={{_target_:tests.probes.SignalAt,signal:{sig},step:{step},"
            f"marker:'{marker}',hook:{hook}}}")  # fmt: skip


def cli(*args: str, **popen: object) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "train.py", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)  # fmt: skip


def assert_same_run(run_dir: Path, reference: tuple[dict, str], results: dict) -> None:
    ref_results, ref_csv = reference  # ref_csv: computed() rows
    rows = computed(run_dir / "metrics.csv")
    assert len(rows) == len(ref_csv)  # every row once ...
    assert rows == ref_csv  # ... with the same values
    assert results["status"] == "finished"
    assert results["steps"] == ref_results["steps"] == 30
    for key in ("test/acc", "test/loss", "val/acc", "val/loss", "best"):
        assert results[key] == ref_results[key], key


@pytest.mark.slow
def test_sigterm_from_outside_saves_and_the_same_command_resumes(tmp_path: Path, reference) -> None:
    run_dir = tmp_path / "run"
    command = [*ARGS, "logger.wandb.mode=offline", f"hydra.run.dir={run_dir}"]
    child = cli(*command)
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and child.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)  # as a scheduler pre-empting the job does
    _, err = child.communicate(timeout=300)
    assert child.returncode == 130, err[-2000:]
    assert "run the same command again to resume" in err
    stopped = json.loads((run_dir / "results.json").read_text())
    assert stopped["status"] == "interrupted" and 5 <= stopped["steps"] < 30
    saved = torch.load(last, weights_only=True)
    assert saved["global_step"] == stopped["steps"]  # saved where it stopped: nothing to redo

    # The same command again, nothing added (run in this process, to keep the test short: the
    # command line's own checks are those of harness.run.resume.check_run_dir, tested elsewhere).
    results = train(compose(command), run_dir)
    assert results["resumed_from"] == str(last)
    assert_same_run(run_dir, reference, results)

    # One W&B run (the id beside the checkpoints) in two offline segments; together they hold
    # every metrics.csv row exactly once (and the pictures, which go to W&B only).
    run_id = (run_dir / "checkpoints" / "wandb_id.txt").read_text().strip()
    segments = sorted((run_dir / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    assert len(segments) == 2
    rows = [row for segment in segments for row in history_rows(segment)]
    pictures = [row for row in rows if all(k.startswith("pictures/") for k in row[1])]
    assert pictures and all(step == 30 for step, _ in pictures)  # drawn once, at the end
    logged = Counter(row for row in rows if row not in pictures)
    assert logged == logged_rows(run_dir / "metrics.csv")


@pytest.mark.slow
def test_sigkill_between_checkpoints_resumes_without_losing_or_repeating_a_row(
    tmp_path: Path, reference
) -> None:
    run_dir = tmp_path / "run"
    command = [*ARGS, NO_WANDB, kill_arg("SIGKILL", 13, run_dir)]
    child = cli(*command, f"hydra.run.dir={run_dir}")
    child.communicate(timeout=300)
    assert child.returncode == -signal.SIGKILL
    assert not (run_dir / "results.json").exists()  # it had no chance to write one
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    # Killed at the end of step 13 (logged as step 12, after the batch-end hooks: so not logged).
    # The resumed run replays steps 11-13; the rows of 11 and 12 are on disk already.
    assert saved["global_step"] == 10
    assert max(step for step, _ in logged_rows(run_dir / "metrics.csv")) == 11

    results = train(compose(command), run_dir)  # the same config: resumes by itself
    assert results["resumed_from"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert_same_run(run_dir, reference, results)


@pytest.mark.parametrize(
    ("step", "hook"),
    [
        (13, "train_batch_end"),  # mid-epoch: saved at the end of the batch
        (20, "train_batch_end"),  # the epoch's last batch: its validation is cut short
        (20, "validation_batch_end"),  # during validation: nothing saved, resumes from step 15
        (20, "train_epoch_end"),  # after the epoch's end: saved there
    ],
)
@pytest.mark.slow
def test_sigterm_anywhere_resumes_to_the_same_result(
    step: int, hook: str, tmp_path: Path, reference
) -> None:
    config = compose([*ARGS, NO_WANDB, kill_arg("SIGTERM", step, tmp_path, hook)])
    stopped = train(config, tmp_path)
    assert stopped["status"] == "interrupted"
    results = train(config, tmp_path)
    assert_same_run(tmp_path, reference, results)


@pytest.mark.slow
def test_ctrl_c_is_interrupted_and_resumes_from_the_last_checkpoint(
    tmp_path: Path, reference
) -> None:
    handler = signal.getsignal(signal.SIGINT)
    config = compose([*ARGS, NO_WANDB, kill_arg("SIGINT", 13, tmp_path)])
    try:  # Lightning ignores further Ctrl-C while it shuts down, and never restores the handler
        stopped = train(config, tmp_path)
    finally:
        signal.signal(signal.SIGINT, handler)
    assert stopped["status"] == "interrupted"
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 10  # Ctrl-C saves nothing: the periodic checkpoint remains
    results = train(config, tmp_path)
    assert_same_run(tmp_path, reference, results)


@pytest.mark.slow
def test_step_checkpoints_wait_for_a_resume_point(tmp_path: Path, monkeypatch) -> None:
    """20 batches an epoch, a validation every 10, last.ckpt due every 20 steps: each due save
    lands on an epoch end or just before a validation, where resuming would skip work, so it is
    taken at the next batch end that is a resume point instead (never dropped)."""
    from harness.run.callbacks import LastCheckpoint

    saves: list[int] = []
    save = LastCheckpoint.save

    def recording(self: LastCheckpoint, trainer) -> None:
        saves.append(trainer.global_step)
        save(self, trainer)

    monkeypatch.setattr(LastCheckpoint, "save", recording)
    overrides = [
        a for a in ARGS if not a.startswith(("checkpoint_every_n_steps", "trainer.max_steps"))
    ]
    train(compose([*overrides, NO_WANDB, "checkpoint_every_n_steps=20", "trainer.max_steps=45",
                   "trainer.val_check_interval=10"]), tmp_path)  # fmt: skip
    by_steps, final = saves[:-1], saves[-1]
    assert final == 45
    assert by_steps == [21, 41]  # due at 20 and 40 (epoch ends), taken one batch later


@pytest.mark.slow
def test_sigkill_mid_epoch_resumes_the_data_order_when_the_run_has_max_epochs(
    tmp_path: Path,
) -> None:
    """A run limited by trainer.max_epochs as well as max_steps: the schedule's length comes from
    trainer.estimated_stepping_batches, which makes Lightning set up the training loader before
    it restores the checkpoint, and Lightning then never hands the loader its saved position. The
    resumed epoch must still continue at the saved batch, not start the epoch over."""
    args = [a for a in ARGS if not a.startswith(("trainer.max_epochs", "trainer.max_steps"))]
    args = [*args, "model=cnn", "trainer.max_epochs=10", "trainer.max_steps=40", NO_WANDB]
    reference_dir = tmp_path / "reference"
    ref_results = train(compose(args), reference_dir)
    run_dir = tmp_path / "run"
    # 20 batches an epoch; last.ckpt every 5 steps: at 5, 10, 15, then 21 (not at the epoch's
    # end, step 20) and 26 (epoch 1, 6 batches done); killed at step 28.
    command = [*args, kill_arg("SIGKILL", 28, run_dir)]
    child = cli(*command, f"hydra.run.dir={run_dir}")
    child.communicate(timeout=300)
    assert child.returncode == -signal.SIGKILL
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 26
    assert saved["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [
        {"epoch": 1, "next_batch": 6}
    ]

    results = train(compose(command), run_dir)
    assert results["resumed_from"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert computed(run_dir / "metrics.csv") == computed(reference_dir / "metrics.csv")
    assert results["steps"] == ref_results["steps"] == 40
    for key in ("test/acc", "test/loss", "val/acc", "val/loss", "best", "best_checkpoint"):
        assert results[key] == ref_results[key], key


def test_a_checkpoint_from_before_the_train_counts_resumes_its_epoch_accuracy() -> None:
    # Such checkpoints hold torchmetrics' MulticlassAccuracy states (tp, fp, tn, fn) instead.
    from lightning_modules.classifier import Classifier

    module = Classifier(torch.nn.Linear(4, 3), optimizer=None, num_classes=3)  # type: ignore[arg-type]
    states = {"tp": torch.tensor([5]), "fp": torch.tensor([3]), "tn": torch.tensor([13]),
              "fn": torch.tensor([3])}  # fmt: skip
    module.on_load_checkpoint({"metric_states": {"train_acc": {"states": states, "updates": 2}}})
    assert (int(module.train_right), module.train_seen) == (5, 8)
