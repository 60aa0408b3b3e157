"""What no command can damage (issue 13, the run side): a finished run is never overwritten, a
run killed at any moment resumes into the same W&B run and the same results, bad input is one
line with nothing written, and two processes never share a run directory."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.rundir.files import read_metrics
from tests.conftest import FAST, ROOT, compose

# digits with a small MLP: a run of a few steps takes seconds on a CPU.
QUICK = ["data=digits", "model=mlp", "callbacks=sweep", "logger.wandb=null",
         "trainer.max_epochs=-1", "trainer.max_steps=6", "trainer.log_every_n_steps=1",
         "trainer.limit_val_batches=2", "trainer.limit_test_batches=2",
         "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]  # fmt: skip


def cli(*args: str, **popen: object) -> subprocess.Popen:
    # Not this process's W&B service (WANDB_SERVICE, set once a test here ran W&B in-process): a
    # killed child's run would stay open in it, and the rerun's same id be "in use".
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"} | {"OMP_NUM_THREADS": "1"}
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


def kill_at(step: int, marker: Path, sig: str = "SIGKILL", hook: str = "train_batch_end") -> str:
    """A probe sending `sig` at `step`, once per marker (tests.probes.SignalAt)."""
    return (f"+callbacks.kill={{_target_:tests.probes.SignalAt,signal:{sig},step:{step},"
            f"marker:'{marker}',hook:{hook}}}")  # fmt: skip


def wandb_ids(run_dir: Path) -> set[str]:
    """The run ids of the offline segments under RUN_DIR/wandb: each folder's name ends with it,
    and each segment's run record holds it (a killed segment may have none on disk yet)."""
    from tests.wandb_files import records

    ids = set()
    for path in sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb")):
        ids.add(path.parent.name.rsplit("-", 1)[1])
        found = records(path, timeout=0)  # a killed segment never gets its exit record
        ids |= {r.run.run_id for r in found if r.WhichOneof("record_type") == "run"}
    return ids


@pytest.mark.slow
def test_sigkill_before_the_first_last_ckpt_reruns_into_the_same_wandb_run_and_its_own_best(
    tmp_path: Path,
) -> None:
    import time

    run_dir = tmp_path / "run"
    quick = [a for a in QUICK if a != "logger.wandb=null"]
    command = [*quick, "logger.wandb.mode=offline", "trainer.val_check_interval=2",
               kill_at(4, tmp_path / "killed"), f"hydra.run.dir={run_dir}"]  # fmt: skip
    status, err = run(*command)
    assert status == -9, err[-2000:]
    ckpts = run_dir / "checkpoints"
    assert not (ckpts / "last.ckpt").exists() and (ckpts / "best.ckpt").is_file()
    first_id = (ckpts / "wandb_id.txt").read_text().strip()
    rerun_at = time.time()
    status, err = run(*command)  # the same command again
    assert status == 0, err[-2000:]
    assert wandb_ids(run_dir) == {first_id}  # both segments, one W&B run
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 2
    assert sorted(p.name for p in ckpts.glob("best*.ckpt")) == ["best.ckpt"]
    assert (ckpts / "best.ckpt").stat().st_mtime >= rerun_at  # this attempt's own model


def test_the_wandb_id_file_is_written_whole(tmp_path: Path, monkeypatch) -> None:
    from harness.rundir import files
    from harness.tracking import wandb as wandb_run

    written = []
    real = files.write_text_atomic
    monkeypatch.setattr(files, "write_text_atomic", lambda p, t: (written.append(p), real(p, t)))
    wandb_run.save_run_id(tmp_path, "abc12345")
    assert written == [tmp_path / "wandb_id.txt"]
    assert (tmp_path / "wandb_id.txt").read_text() == "abc12345"


@pytest.mark.slow
def test_a_second_train_py_on_a_run_directory_in_use_names_the_holder_and_writes_nothing(
    tmp_path: Path,
) -> None:
    from harness.rundir.lock import take

    run_dir = tmp_path / "run"
    lock = take(run_dir, "run directory")  # this process holds it, as a running train.py does
    try:
        before = digest(run_dir)
        status, err = run(*QUICK, f"hydra.run.dir={run_dir}")
    finally:
        lock.release()
    assert status == 2, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"process {os.getpid()}" in lines[0], err
    assert digest(run_dir) == before and sorted(p.name for p in run_dir.iterdir()) == [".lock"]


@pytest.mark.slow
def test_two_train_py_at_once_on_one_run_directory_the_second_is_refused(tmp_path: Path) -> None:
    import time

    run_dir = tmp_path / "run"
    first = cli(*QUICK, "trainer.max_steps=100000", f"hydra.run.dir={run_dir}")
    try:
        deadline = time.time() + 120
        while not (run_dir / "metrics.csv").exists() and time.time() < deadline:
            time.sleep(0.1)
        second = cli(*QUICK, "trainer.max_steps=100000", f"hydra.run.dir={run_dir}")
        try:
            _, err = second.communicate(timeout=90)
        finally:
            second.kill()
            second.communicate()
        status = second.returncode
        assert first.poll() is None
    finally:
        first.kill()
        first.communicate()
    assert status == 2, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"process {first.pid}" in lines[0], err


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["seed=4294967296"], "seed"),
        (["optim.lr=1e400"], "optim.lr"),
        (["optim.weight_decay=nan"], "optim.weight_decay"),
        (["trainer.max_steps=0"], "trainer.max_steps"),
        (["trainer.max_epochs=0"], "trainer.max_epochs"),
        (["experiment=cpu_digits", "data.batch_size=64"], "val_check_interval"),
        (["data.batch_size=2000"], "nothing to train"),
        (["trainer.limit_train_batches=0"], "nothing to train"),
        (["trainer.limit_train_batches=0.001"], "nothing to train"),
        (["trainer.limit_val_batches=0"], "nothing to validate"),
        (["trainer.limit_test_batches=0"], "nothing to test"),
        (["data.batch_size=512", "trainer.val_check_interval=3"], "val_check_interval"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_run_directory(
    overrides: list[str], says: str, tmp_path: Path, capsys
) -> None:
    from harness.run.app import run_command

    run_dir = tmp_path / "run"
    args = [*QUICK, *overrides, f"hydra.run.dir={run_dir}"]
    if overrides[0].startswith("experiment="):  # the preset's own model and steps
        args = [a for a in args if not a.startswith(("model=", "trainer.max_steps="))] + overrides
    status = run_command(args)
    err = capsys.readouterr().err.strip()
    assert status == 2, err[-2000:]
    assert len(err.splitlines()) == 1 and says in err, err
    assert not run_dir.exists()


def comparable(results: dict) -> dict:
    """results.json without what differs between any two runs: wall-clock speed and memory
    (perf/*), the runtime, where a run resumed from, its folder and its command line."""
    drop = (
        "runtime_s",
        "resumed_from",
        "run_dir",
        "overrides",
        "command",
    )  # command: the run dir in argv
    return {k: v for k, v in results.items() if "perf/" not in k and k not in drop}


@pytest.mark.slow
def test_killed_during_test_then_resumed_gives_the_uninterrupted_results(tmp_path: Path) -> None:
    import json

    import torch

    from harness.run.recipe import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same thread count as the child (OMP_NUM_THREADS=1)
    try:
        reference = train(compose(QUICK), tmp_path / "reference")
        run_dir = tmp_path / "run"
        command = [*QUICK, kill_at(0, tmp_path / "killed", hook="test_batch_end")]
        status, err = run(*command, f"hydra.run.dir={run_dir}")
        assert status == -9, err[-2000:]
        assert not (run_dir / "results.json").exists()
        resumed = train(compose(command), run_dir)
    finally:
        torch.set_num_threads(threads)
    assert resumed["status"] == "finished"
    assert comparable(json.loads((run_dir / "results.json").read_text())) == comparable(reference)


CHAOS = ["data=digits", "model=mlp", "callbacks=sweep", "logger.wandb.mode=offline",
         "data.batch_size=64", "trainer.max_epochs=-1", "trainer.max_steps=30",
         "trainer.log_every_n_steps=1", "trainer.limit_val_batches=2",
         "trainer.limit_test_batches=2", "trainer.enable_progress_bar=false",
         "trainer.enable_model_summary=false", "checkpoint_every_n_steps=3",
         "+callbacks.pause={_target_:tests.probes.Pause,seconds:0.1}"]  # fmt: skip


def logged_step(run_dir: Path) -> int:
    """The last step metrics.csv holds (-1: none yet); read only, as the run appends to it."""
    from harness.rundir.files import read_metrics

    _, rows = read_metrics(run_dir / "metrics.csv")
    return max((int(r["step"]) for r in rows), default=-1)


@pytest.mark.slow
def test_chaos_train_py_killed_at_random_steps_ends_as_the_uninterrupted_run(
    tmp_path: Path,
) -> None:
    """SIGKILL from outside at random steps (one before the first last.ckpt, at step 3), the
    same command rerun after each kill until it finishes: the same rows, the same results, one
    W&B run (docs/failures_chaos.md)."""
    import json
    import random
    import time

    import torch

    from harness.run.recipe import train
    from tests.conftest import compose
    from tests.test_resume import computed

    rng = random.Random(13)
    targets = [rng.randint(0, 1), *sorted(rng.sample(range(4, 28), 2))]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same thread count as the children (OMP_NUM_THREADS=1)
    try:
        # Without W&B: a W&B run in this process would leave its service to the children.
        reference = train(compose([*CHAOS, "logger.wandb=null"]), tmp_path / "reference")
    finally:
        torch.set_num_threads(threads)
    run_dir = tmp_path / "run"
    command = [*CHAOS, f"hydra.run.dir={run_dir}"]
    killed_at = []
    for target in targets:
        child = cli(*command)
        deadline = time.time() + 120
        while child.poll() is None and logged_step(run_dir) < target and time.time() < deadline:
            time.sleep(0.01)
        child.kill()
        _, err = child.communicate()
        assert child.returncode == -9, err[-2000:]  # killed before the run ended
        killed_at.append(logged_step(run_dir))
    for _ in range(2):  # rerun until it finishes
        status, err = run(*command)
        if status == 0:
            break
    assert status == 0, err[-2000:]
    assert computed(run_dir / "metrics.csv") == computed(tmp_path / "reference" / "metrics.csv")
    results = json.loads((run_dir / "results.json").read_text())
    drop = ("wandb_id", "wandb_mode")
    assert {k: v for k, v in comparable(results).items() if k not in drop} == {
        k: v for k, v in comparable(reference).items() if k not in drop
    }
    run_id = (run_dir / "checkpoints" / "wandb_id.txt").read_text().strip()
    assert wandb_ids(run_dir) == {run_id}
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == len(killed_at) + 1


def test_a_full_disk_is_one_line_naming_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A full disk mid-run (torch.save's RuntimeError over the OSError, as seen on a tmpfs):
    exit 1 with one line, not a traceback."""
    import errno

    from harness.run import app, recipe

    def full(*args, **kwargs):
        try:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "last.ckpt"))
        except OSError as e:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos") from e

    monkeypatch.setattr(recipe, "train", full)
    cfg = compose(["data=digits", *FAST])
    assert app.run_checked(cfg, tmp_path, None) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no space left on the device"), err
    assert "last.ckpt" in err[0]


@pytest.mark.parametrize("where", ["lock", "hydra_files"])
def test_a_disk_full_before_training_is_the_same_one_line(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A disk already full when the run directory's lock or .hydra/ is written (seen on a full
    tmpfs: a traceback from lock.take): the one line of a full disk mid-run, exit 1."""
    import errno

    from harness.run import app
    from harness.rundir import lock

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "lock":
        monkeypatch.setattr(lock, "take", full)
    else:
        monkeypatch.setattr(app, "write_hydra_files", full)
    assert app.run_command(["data=digits", *FAST, f"hydra.run.dir={tmp_path / 'run'}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no space left on the device"), err
    # a caller that goes on (a notebook, the next test) never logs into the removed run
    into = [
        h for h in logging.getLogger().handlers if str(tmp_path) in getattr(h, "baseFilename", "")
    ]
    assert not into, into


@pytest.mark.slow
def test_files_of_an_attempt_whose_config_is_not_recorded_are_not_restarted_into(
    tmp_path: Path,
) -> None:
    """An earlier attempt's W&B id and rows but no recorded config (.hydra/, e.g. a train() call
    from a notebook): nothing says it was the same run, so the command starts a run of its own
    (a new W&B id, no rows of the other's kept)."""
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "wandb_id.txt").write_text("othrrun1")
    (run_dir / "metrics.csv").write_text("step,train/loss\n0,9.5\n")
    quick = [a for a in QUICK if a != "logger.wandb=null"]
    status, err = run(*quick, "logger.wandb.mode=offline", f"hydra.run.dir={run_dir}")
    assert status == 0, err[-2000:]
    assert "othrrun1" not in wandb_ids(run_dir)
    _, rows = read_metrics(run_dir / "metrics.csv")
    assert rows and "9.5" not in {row.get("train/loss") for row in rows}
