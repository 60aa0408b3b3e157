"""SLURM requeue through submitit, run with submitit's local executor: the signal SLURM sends
before the time limit (USR2) stops the run with last.ckpt saved, submitit requeues the same job,
and it resumes in the same run directory (a timestamped sweep dir is not drawn again)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from harness.run import requeue
from harness.rundir.files import logged_rows
from tests.conftest import FAST, ROOT


def test_the_requeue_signal_is_held_until_the_run_has_saved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setenv("SUBMITIT_FOLDER", "/nonexistent")
    old_usr2, old_term = signal.getsignal(signal.SIGUSR2), signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGUSR2, lambda s, f: calls.append("submitit requeues"))
        signal.signal(signal.SIGTERM, lambda s, f: calls.append("lightning stops"))
        held = requeue.install()
        assert held is not None
        os.kill(os.getpid(), signal.SIGUSR2)  # as SLURM does, signal_delay_s before the limit
        assert calls == ["lightning stops"]  # not requeued yet: last.ckpt first
        held.after_run("interrupted")
        assert calls == ["lightning stops", "submitit requeues"]
    finally:
        signal.signal(signal.SIGUSR2, old_usr2)
        signal.signal(signal.SIGTERM, old_term)


def test_a_run_that_finished_anyway_is_not_requeued(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    held = requeue.Requeue(signal.SIGUSR2, lambda s, f: calls.append("requeue"))
    held.after_run("interrupted")  # no signal came: an ordinary Ctrl-C
    held.received = True
    held.after_run("finished")  # the signal came during testing, and the run still finished
    assert calls == []


def test_one_owner_of_requeue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    monkeypatch.delenv("SUBMITIT_FOLDER", raising=False)
    assert requeue.cluster_plugins() == []  # a plain sbatch job: Lightning's auto_requeue owns it
    monkeypatch.setenv("SUBMITIT_FOLDER", "/x")
    (env,) = requeue.cluster_plugins()  # a submitit job: submitit owns it, Lightning's is off
    assert env.auto_requeue is False
    monkeypatch.delenv("SLURM_NTASKS")
    assert requeue.cluster_plugins() == []  # submitit's local executor: not SLURM


@pytest.mark.slow
def test_submitit_requeues_into_the_same_run_directory_and_resumes(tmp_path: Path) -> None:
    marker = tmp_path / "signalled"
    fast = [o for o in FAST if not o.startswith("logger.wandb")]
    args = [
        "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
        f"hydra.sweep.dir={tmp_path}/sweep/${{now:%H-%M-%S-%f}}",  # a new time would be a new dir
        *fast, "logger=csv", "data=digits", "model=mlp", "trainer.max_steps=12",
        "checkpoint_every_n_steps=100",  # no periodic save: last.ckpt comes from the signal
        f"+callbacks.kill={{_target_:tests.probes.SignalAt,signal:SIGUSR2,step:7,marker:'{marker}'}}",
    ]  # fmt: skip
    out = subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert marker.exists()
    (sweep,) = (tmp_path / "sweep").iterdir()  # one sweep directory: the requeued job found it
    run_dir = sweep / "0"
    assert_requeued_and_resumed(sweep / ".submitit", run_dir, steps=12)


def assert_requeued_and_resumed(submitit_dir: Path, run_dir: Path, steps: int) -> None:
    """submitit requeued the job; the run resumed from last.ckpt, each training step logged once."""
    logs = "".join(p.read_text() for p in submitit_dir.glob("*/*_log.*"))
    assert "Requeued job" in logs
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "finished" and results["steps"] == steps
    assert results["resumed_from"] == str(run_dir / "checkpoints" / "last.ckpt")
    rows = logged_rows(run_dir / "metrics.csv")
    train_steps = Counter(step for (step, names), n in rows.items() for _ in range(n)
                          if "train/loss" in names)  # fmt: skip
    assert sorted(train_steps) == list(range(steps)) and set(train_steps.values()) == {1}


def test_the_slurm_launcher_requeues_and_signals_what_the_harness_holds() -> None:
    from hydra import compose, initialize_config_dir
    from submitit.slurm import slurm

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher.max_num_timeout > 0  # the plugin's default, 0, never requeues a timed-out job
    sbatch = slurm._make_sbatch_string(command="true", folder="/x", time=launcher.timeout_min,
                                       signal_delay_s=launcher.signal_delay_s)  # fmt: skip
    sent = f"SIG{slurm.SlurmJobEnvironment.USR_SIG}"
    assert f"#SBATCH --signal={sent[3:]}@{launcher.signal_delay_s}" in sbatch
    assert getattr(signal, sent) == signal.SIGUSR2  # what requeue.install() holds
