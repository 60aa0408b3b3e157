"""`sweep.py run FILE --launcher slurm|local`: the runner's runs as submitit jobs, with submitit's
local executor standing in for SLURM (and stand-in sbatch/sacct/scancel for what only SLURM
does). A job runs the run's command in its run directory and reports train.py's exit status;
SIGTERM (hyperband's stop) reaches the run through submitit; the ledger records job ids; a
restarted runner re-attaches to the jobs still running and submits only what did not end."""

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

from harness.sweep import slurm
from harness.sweep.ledger import Ledger
from harness.sweep.main import main
from harness.sweep.outcome import outcome
from harness.sweep.runner import Runner
from harness.sweep.spec import load_spec
from tests.conftest import FAST, ROOT
from tests.test_cluster_requeue import assert_requeued_and_resumed

FILES = ROOT / "tests" / "sweep_files"
SETTINGS = {"timeout_min": 10, "gpus_per_node": 0}  # a CPU machine: no GPU for the local jobs


def argv(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "train.py", *FAST, "data=digits", "model=mlp",
            f"hydra.run.dir={run_dir}", *extra]  # fmt: skip


def wait(run, timeout: float = 300) -> int:
    deadline = time.time() + timeout
    while run.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    assert run.returncode is not None, "the job did not end"
    return run.returncode


def fake_slurm(tmp: Path, monkeypatch: pytest.MonkeyPatch, state: str = "RUNNING") -> Path:
    """srun, sbatch (keeps the batch script, answers job 42), sacct (job 42 is `state`) and
    scancel (logs its arguments) on PATH: SLURM's side of submitit, for what a test can check."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    scripts = {
        "srun": "exit 0",
        "sbatch": f'cp "$1" {tmp}/sbatch.sh; echo "Submitted batch job 42"',
        "sacct": f"printf 'JobID|State|NodeList\\n42|{state}|node1\\n'",
        "scancel": f'echo "$@" >> {tmp}/scancel.log',
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return tmp


# -- settings: the keys of hydra/launcher=slurm ---------------------------------------------------
def test_settings_start_from_the_projects_slurm_launcher_and_take_overrides() -> None:
    got = slurm.settings(
        ["partition=gpu", "timeout_min=60", "additional_parameters={requeue: true}"]
    )
    assert got["partition"] == "gpu" and got["timeout_min"] == 60
    assert got["additional_parameters"] == {"requeue": True}
    assert (
        got["max_num_timeout"] == 10 and got["signal_delay_s"] == 120
    )  # conf/hydra/launcher/slurm.yaml


def test_an_unknown_setting_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sweep"
    code = main(["run", str(FILES / "standin_grid.yaml"), "--out", str(out), "--launcher", "local",
                 "--slurm", "partiton=gpu"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "partiton" in err and "partition" in err and "timeout_min" in err
    assert not out.exists()  # nothing written


@pytest.mark.parametrize("bad", ["timeout_min=abc", "nodes=2"])  # local: one node
def test_a_setting_the_executor_refuses_is_one_line_and_nothing_is_written(
    tmp_path: Path, capsys, bad: str
) -> None:
    out = tmp_path / "sweep"
    code = main(["run", str(FILES / "standin_grid.yaml"), "--out", str(out), "--launcher", "local",
                 "--slurm", bad])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and bad.split("=")[0] in err + bad
    assert not out.exists()


def test_settings_without_a_submitit_launcher_are_refused(tmp_path: Path, capsys) -> None:
    code = main(["run", str(FILES / "standin_grid.yaml"), "--out", str(tmp_path / "s"),
                 "--slurm", "partition=gpu"])  # fmt: skip
    assert code == 2 and "--launcher slurm" in capsys.readouterr().err


def test_slurm_without_sbatch_is_one_line_and_exit_2(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no SLURM commands here
    code = main(["run", str(FILES / "standin_grid.yaml"), "--out", str(tmp_path / "s"),
                 "--launcher", "slurm"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "sbatch" in err and "--launcher local" in err
    assert not (tmp_path / "s").exists()


def test_slurm_settings_become_the_sbatch_lines_and_the_ledger_gets_the_job_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_slurm(tmp_path, monkeypatch)
    launch = slurm.Launcher("slurm", tmp_path / "jobs", slurm.settings(["partition=gpu"]), name="s")
    job = launch("k", {}, ["true"], tmp_path / "runs" / "k", ROOT, threads=1)
    script = (tmp_path / "sbatch.sh").read_text()
    for line in ("--partition=gpu", "--time=240", "--signal=USR2@120", "--gpus-per-node=1",
                 "--cpus-per-task=8", "--mem=32GB", "--open-mode=append", "--job-name=s"):  # fmt: skip
        assert f"#SBATCH {line}\n" in script, line
    assert job.proc.pid == "42"
    assert job.proc.ledger_fields()["job_id"] == "42"
    assert job.proc.ledger_fields()["launcher"] == "slurm"
    job.proc.send_signal(signal.SIGTERM)  # hyperband's stop: the signal SLURM sends at the end
    assert (tmp_path / "scancel.log").read_text().split() == ["--signal=TERM", "42"]


@pytest.mark.parametrize("state, reattached", [("RUNNING", True), ("PENDING", True),
                                               ("CANCELLED", False), ("TIMEOUT", False)])  # fmt: skip
def test_a_restarted_runner_reattaches_to_a_queued_or_running_slurm_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str, reattached: bool
) -> None:
    fake_slurm(tmp_path, monkeypatch, state)
    launch = slurm.Launcher("slurm", tmp_path / "jobs", slurm.settings([]))
    entry = {"state": "running", "job_id": "42", "launcher": "slurm"}
    job = launch.reattach("k", {}, tmp_path / "runs" / "k", entry)
    assert (job is not None) == reattached
    if job is not None:
        assert job.proc.poll() is None and job.proc.pid == "42"


def test_a_sweep_with_jobs_of_another_launcher_still_recorded_running_is_refused(
    tmp_path: Path, capsys
) -> None:
    out = tmp_path / "sweep"
    out.mkdir()
    Ledger(out / "ledger.jsonl").record("k", state="running", job_id="42", launcher="slurm")
    code = main(["run", str(FILES / "standin_grid.yaml"), "--out", str(out), "--launcher", "local"])
    err = capsys.readouterr().err
    assert code == 2 and "--launcher slurm" in err and "42" in err


# -- the local executor: real jobs ---------------------------------------------------------------
@pytest.mark.slow
def test_a_run_as_a_job_finishes_with_its_results(tmp_path: Path) -> None:
    launch = slurm.Launcher("local", tmp_path / "jobs", SETTINGS)
    run_dir = tmp_path / "runs" / "a"
    job = launch("a", {}, argv(run_dir), run_dir, ROOT, threads=1)
    assert job.proc.pid  # the job id, for the ledger
    assert wait(job.proc) == 0
    assert json.loads((run_dir / "results.json").read_text())["status"] == "finished"
    assert (run_dir / "output.log").stat().st_size > 0
    assert outcome(run_dir, job.proc.returncode, stopped=False) == "finished"


@pytest.mark.slow
def test_sigterm_through_submitit_stops_the_run_cleanly(tmp_path: Path) -> None:
    launch = slurm.Launcher("local", tmp_path / "jobs", SETTINGS)
    run_dir = tmp_path / "runs" / "b"
    long = argv(run_dir, "trainer.max_steps=100000", "checkpoint_every_n_steps=5")
    job = launch("b", {}, long, run_dir, ROOT, threads=1)
    deadline = time.time() + 300
    while not (run_dir / "checkpoints" / "last.ckpt").exists() and time.time() < deadline:
        time.sleep(0.2)
    job.proc.send_signal(signal.SIGTERM)  # as the runner's hyperband stop does
    assert wait(job.proc) == 130
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "interrupted" and 5 <= results["steps"] < 100000
    assert outcome(run_dir, 130, stopped=True) == "stopped"


def _train_sweep(tmp: Path) -> Path:
    """Two real train.py runs on digits, a few steps each."""
    path = tmp / "two.yaml"
    path.write_text(
        "name: two\nprogram: train.py\nmethod: grid\nmetric: {name: best/val/acc, goal: maximize}\n"
        "command: ['${env}', '${interpreter}', '${program}', '${args_no_hyphens}']\n"
        "parameters:\n  optim.lr: {values: [0.01, 0.1]}\n"
    )
    return path


def _files(run_dir: Path) -> set[str]:
    return {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_a_sweep_through_the_local_launcher_writes_what_the_default_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    sweep = _train_sweep(tmp_path)
    extra = [*FAST, "data=digits", "model=mlp", "--no-report"]
    gpus = [f"--slurm={k}={v}" for k, v in SETTINGS.items()]
    assert main(["run", str(sweep), "--out", str(tmp_path / "default"), "--jobs", "2", *extra]) == 0
    assert main(["run", str(sweep), "--out", str(tmp_path / "local"), "--jobs", "2",
                 "--launcher", "local", *gpus, *extra]) == 0  # fmt: skip
    default, local = (
        Ledger(tmp_path / "default" / "ledger.jsonl"),
        Ledger(tmp_path / "local" / "ledger.jsonl"),
    )
    assert {e["state"] for e in local.entries.values()} == {"finished"} and len(local.entries) == 2
    assert set(local.entries) == set(default.entries)
    for key, entry in local.entries.items():
        assert entry["launcher"] == "local" and entry["job_id"] and entry["job_state"]
        assert _files(tmp_path / "local" / "runs" / key) == _files(
            tmp_path / "default" / "runs" / key
        )
    assert len({e["job_id"] for e in local.entries.values()}) == 2


@pytest.mark.slow
def test_hyperband_stops_a_job_of_the_local_launcher(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STANDIN_SLEEP", "0.3")
    monkeypatch.setattr("harness.sweep.runner.EARLY_STOP_EVERY_S", 0.1)
    out = tmp_path / "hb"
    launch = slurm.Launcher("local", out / ".submitit" / "%j", SETTINGS)
    summary = Runner(load_spec(FILES / "standin_hyperband.yaml"), out, jobs=1, cwd=ROOT,
                     progress=False, start=launch).run()  # fmt: skip
    assert dict(summary.states) == {"finished": 2, "stopped": 1}
    (stopped,) = [
        e for e in Ledger(out / "ledger.jsonl").entries.values() if e["state"] == "stopped"
    ]
    assert stopped["params"]["optim.lr"] == 1.0 and stopped["job_id"]
    rows = (out / stopped["run_dir"] / "metrics.csv").read_text().splitlines()
    assert len(rows) - 1 < 10
    assert (
        json.loads((out / stopped["run_dir"] / "results.json").read_text())["status"]
        == "interrupted"
    )


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_a_killed_runner_restarted_reattaches_and_submits_only_what_did_not_end(
    tmp_path: Path,
) -> None:
    out, log = tmp_path / "sweep", tmp_path / "standin.log"
    cmd = [sys.executable, str(ROOT / "sweep.py"), "run", str(FILES / "standin_grid.yaml"),
           "--out", str(out), "--jobs", "2", "--no-report", "--launcher", "local",
           "--slurm", "gpus_per_node=0", "trainer.max_steps=15"]  # fmt: skip
    gate = tmp_path / "gate"  # the first two runs end only once it exists: after the reattach
    env = {**os.environ, "STANDIN_LOG": str(log), "STANDIN_GATE": str(gate)}
    runner = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    ledger_path = out / "ledger.jsonl"

    def wait_for(ready, proc: subprocess.Popen) -> list[dict]:  # type: ignore[type-arg]
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None:
            entries = Ledger(ledger_path).entries if ledger_path.exists() else {}
            found = [e for e in entries.values() if ready(e)]
            if len(found) == 2:
                return found
            time.sleep(0.1)
        gate.touch()  # no stand-in is left waiting
        proc.kill()
        pytest.fail(proc.communicate()[0].decode())

    jobs = wait_for(lambda e: e.get("state") == "running" and e.get("job_id"), runner)
    runner.kill()  # SIGKILL: the runner cannot clean up; its jobs are the scheduler's and go on
    runner.wait()
    assert all(_alive(int(e["job_id"])) for e in jobs)

    env.pop("STANDIN_GATE")  # the runs submitted from now on end at once
    again = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    reattached = wait_for(lambda e: e.get("reattached") is True, again)
    assert sorted(e["key"] for e in reattached) == sorted(e["key"] for e in jobs)
    gate.touch()
    output = again.communicate(timeout=300)[0]
    assert again.returncode == 1, output  # 1: the lr=5 runs crash
    final = Ledger(ledger_path).entries
    assert len(final) == 12 and all(e["state"] != "running" for e in final.values())
    assert all(e.get("job_id") for e in final.values())
    starts = Counter(
        line.split()[1] for line in log.read_text().splitlines() if line.startswith("start")
    )
    for e in jobs:  # re-attached, not submitted a second time
        assert starts[e["key"]] == 1, starts
        assert final[e["key"]]["state"] == "finished" and final[e["key"]]["job_id"] == e["job_id"]
        assert final[e["key"]]["reattached"] is True
    assert sorted(starts) == sorted(final)  # every run ran; the others once each, too
    assert set(starts.values()) == {1}


@pytest.mark.slow
def test_sigterm_to_the_runner_cancels_its_jobs_and_records_them_interrupted(
    tmp_path: Path,
) -> None:
    out = tmp_path / "sweep"
    cmd = [sys.executable, str(ROOT / "sweep.py"), "run", str(FILES / "standin_grid.yaml"),
           "--out", str(out), "--jobs", "2", "--no-report", "--launcher", "local",
           "--slurm", "gpus_per_node=0", "trainer.max_steps=300"]  # fmt: skip
    env = {**os.environ, "STANDIN_SLEEP": "1"}  # 300 s a run: the runs end only if stopped
    runner = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    ledger_path, deadline = out / "ledger.jsonl", time.time() + 120
    while time.time() < deadline:
        entries = Ledger(ledger_path).entries if ledger_path.exists() else {}
        started = [e for e in entries.values() if e.get("job_id")]
        if len(started) == 2 and all(
            (out / e["run_dir"] / "metrics.csv").exists() for e in started
        ):
            break  # two jobs whose runs are under way
        time.sleep(0.1)
    runner.send_signal(signal.SIGTERM)
    _, err = runner.communicate(timeout=120)
    assert runner.returncode == 130, err
    entries = Ledger(ledger_path).entries
    assert {e["state"] for e in entries.values()} == {"interrupted"}
    for e in entries.values():  # stopped by the cancel: they wrote their results
        assert (
            json.loads((out / e["run_dir"] / "results.json").read_text())["status"] == "interrupted"
        )
    time.sleep(2)  # the controllers end their tasks, then themselves
    assert not [e for e in entries.values() if _alive(int(e["job_id"]))]


@pytest.mark.slow
def test_a_job_signalled_before_its_time_limit_is_requeued_into_its_run_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signal SLURM sends signal_delay_s before the limit (USR2) reaches the job's task: the
    run saves last.ckpt, submitit requeues the job (TrainCommand.checkpoint), and the same command
    resumes in the same directory, each training step logged once."""
    monkeypatch.chdir(ROOT)
    marker, sweep = tmp_path / "signalled", _train_sweep(tmp_path)
    sweep.write_text(sweep.read_text().replace("[0.01, 0.1]", "[0.01]"))
    out = tmp_path / "sweep"
    probe = f"+callbacks.kill={{_target_:tests.probes.SignalAt,signal:SIGUSR2,step:7,marker:'{marker}',to_parent:true}}"  # fmt: skip
    code = main(["run", str(sweep), "--out", str(out), "--launcher", "local", "--no-report",
                 "--slurm", "gpus_per_node=0", *FAST, "data=digits", "model=mlp",
                 "trainer.max_steps=12", "checkpoint_every_n_steps=100", probe])  # fmt: skip
    assert code == 0
    assert marker.exists()
    (entry,) = Ledger(out / "ledger.jsonl").entries.values()
    assert entry["state"] == "finished"
    assert_requeued_and_resumed(out / ".submitit", out / entry["run_dir"], steps=12)
