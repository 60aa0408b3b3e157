"""The sweep files and the offline runner: every sweep's runs compose and pass the checks; the
runner classifies runs, resumes after a kill, stops runs by hyperband. Runs here are the
stand-in program (tests/sweep_standin.py), which keeps train.py's contract without training."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.sweep import propose
from harness.sweep.engine import python_values
from harness.sweep.ledger import Ledger
from harness.sweep.runner import Runner
from harness.sweep.spec import apply_extra, command, load_spec, run_key
from harness.sweep.validate import check_runs
from harness.sweep.workers import Workers
from tests.conftest import ROOT, compose

SWEEPS = sorted((ROOT / "sweeps").glob("*.yaml"))
FILES = ROOT / "tests" / "sweep_files"
# Overrides a sweep file needs after it: the suite runs the user's own class (optim=custom).
AFTER = {"suite_cpu": {"optim._target_": "tests.optimizers.SignMomentum"}}


MODES = ("fork", "process")  # sweep.py run --workers: the runner's tests run in both


@pytest.fixture(params=MODES)
def start(request):
    """start(jobs): the Runner's `start`, process.start (None) or a fork server's (one that
    imports nothing heavy: the stand-in needs nothing) whose runs were all forked."""
    made = []

    def start(jobs: int):
        if request.param == "process":
            return None
        made.append(Workers(threads=max(1, (os.cpu_count() or 1) // jobs), preload=()))
        return made[-1].start

    yield start
    for workers in made:
        workers.close()
        assert not workers.said, workers.said  # no run started as a process instead


def _runs_of(spec):
    """Parameters of runs the sweep would make: a whole grid, or a few random/bayes draws."""
    if spec.method == "bayes":
        return [propose.propose_bayes(spec, []) for _ in range(3)]
    return propose.plan(spec, None if spec.method == "grid" else 5)


@pytest.mark.slow
@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_every_run_of_every_sweep_is_a_valid_train_py_command(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_spec(path)
    # checkpoints a sweep starts from (made by an earlier run) exist, as relative paths do there
    monkeypatch.chdir(tmp_path)
    for value in re.findall(r"[\w./-]+\.ckpt", path.read_text()):
        (tmp_path / value).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / value).touch()
    assert spec.config["program"] == "train.py"
    assert "${args_no_hyphens}" in spec.config["command"]
    assert "callbacks=sweep" in spec.config["command"]  # no pictures in sweeps: they cost minutes
    runs = _runs_of(spec)
    assert runs
    runner = Runner.__new__(Runner)  # only its command building: no directory
    runner.spec, runner.fixed, runner.extra = spec, AFTER.get(path.stem, {}), []
    overrides = [runner.train_overrides(p) for p in runs]
    if "data.train=" in path.read_text():  # your own files, named on the command line it shows
        from tests.own_files import write_labelled_splits

        files = write_labelled_splits(tmp_path / "own", "csv", splits=("train", "test"))
        overrides = [[*o, f"data.train={files['train']}", f"data.test={files['test']}"]
                     for o in overrides]  # fmt: skip
    check_runs(overrides)
    # The sweep optimises the runs' score: the best value of their task's monitor (a sweep over
    # tasks with different monitors: best/val/loss, which every task logs)
    by_choices = {tuple(o for o in runner.train_overrides(p) if "." not in o.split("=")[0]): p for p in runs}  # fmt: skip
    monitors = {compose(runner.train_overrides(p)).task for p in by_choices.values()}
    goals = {(t.monitor, t.mode) for t in monitors}
    metric = spec.config["metric"]
    if len(goals) == 1:
        (monitor, mode), = goals  # fmt: skip
        assert metric == {"name": f"best/{monitor}", "goal": f"{mode}imize"}
    else:
        assert metric == {"name": "best/val/loss", "goal": "minimize"}


def test_sweeps_folder_holds_only_yaml() -> None:
    # an __init__.py would make sweeps/ a package that shadows W&B's engine, `sweeps`
    assert {p.suffix for p in (ROOT / "sweeps").iterdir()} == {".yaml"}


def test_random_proposals_are_plain_python_and_written_as_the_agent_writes_them() -> None:
    spec = load_spec(FILES / "standin_grid.yaml")
    spec.config.update(method="random", parameters={"optim.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1.0}})  # fmt: skip
    params = propose.plan(spec, 3)
    assert len(params) == 3
    lr = params[0]["optim.lr"]
    assert type(lr) is float and 1e-4 <= lr <= 1.0
    json.dumps(params)  # a numpy float would not serialise
    argv = command(spec, params[0], {"trainer.max_epochs": "2"})
    assert f"optim.lr={lr}" in argv and "trainer.max_epochs=2" in argv
    assert python_values({"a": [__import__("numpy").float64(0.5)]}) == {"a": [0.5]}


def test_extra_overrides_replace_constants_and_join_every_run() -> None:
    spec, fixed = apply_extra(load_spec(ROOT / "sweeps" / "optim_lr_digits.yaml"), ["trainer.max_epochs=2", "data.batch_size=32"])  # fmt: skip
    assert fixed == {"data.batch_size": "32"}
    runs = propose.plan(spec, None)
    assert {r["trainer.max_epochs"] for r in runs} == {2}
    assert "data.batch_size=32" in command(spec, runs[0], fixed)


def test_an_override_with_a_subset_of_a_swept_parameters_values_narrows_the_grid() -> None:
    spec = load_spec(ROOT / "sweeps" / "optim_lr_cpu.yaml")
    full = propose.plan(spec, None)
    narrow, fixed = apply_extra(spec, ["optim=adam", "seed=0", "optim.lr=1e-3,0.1"])
    runs = propose.plan(narrow, None)
    assert fixed == {} and len(runs) == len(full) // 2 // 2 // 3 * 2
    assert {(r["optim"], r["seed"]) for r in runs} == {("adam", 0)}
    assert {r["optim.lr"] for r in runs} == {0.001, 0.1}
    with pytest.raises(ConfigError, match="sweeps optim over momentum, adam; give a subset"):
        apply_extra(spec, ["optim=sgd"])
    bayes = load_spec(ROOT / "sweeps" / "lr_search_digits.yaml")
    with pytest.raises(ConfigError, match="drawn from a distribution"):
        apply_extra(bayes, ["optim.lr=0.1"])
    assert apply_extra(bayes, ["optim=sgd,adamw"])[0].config["parameters"]["optim"] == {"values": ["sgd", "adamw"]}  # fmt: skip


def test_a_bad_parameter_is_one_error_before_anything_runs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = (FILES / "standin_grid.yaml").read_text().replace("[0.01, 5, 10]", "[0.01, -1]")
    bad.write_text(text)
    with pytest.raises(
        ConfigError, match=r"optim\.lr=-1 seed=0: optim\.lr must be a positive number"
    ):
        Runner(load_spec(bad), tmp_path / "out").run()
    assert not (tmp_path / "out" / "runs").exists()
    with pytest.raises(ConfigError, match=r"optim\.lr=1: standin-grid sweeps optim\.lr over 0\.01, 5, 10; give a subset"):  # fmt: skip
        Runner(load_spec(FILES / "standin_grid.yaml"), tmp_path / "o2", extra=["optim.lr=1"])
    assert not (tmp_path / "o2").exists()
    bad.write_text(text.replace("method: grid", "method: grod"))
    with pytest.raises(ConfigError, match="not a valid W&B sweep"):
        load_spec(bad)


def _sweep_cmd(spec: Path, out: Path, *extra: str, workers: str = "fork") -> list[str]:
    return [sys.executable, str(ROOT / "sweep.py"), "run", str(spec), "--out", str(out), "--jobs", "2", "--no-report", "--workers", workers, *extra]  # fmt: skip


@pytest.mark.slow
def test_runner_classifies_runs_and_resumes_only_what_did_not_end(tmp_path: Path, start) -> None:
    out = tmp_path / "sweep"
    spec = load_spec(FILES / "standin_grid.yaml")
    summary = Runner(spec, out, jobs=2, cwd=ROOT, progress=False, start=start(2)).run()
    # lr 0.01 finishes, lr 10 diverges (data, not an error), lr 5 crashes; 2 optimizers x 2 seeds
    assert dict(summary.states) == {"finished": 4, "diverged": 4, "failed": 4}
    assert all("boom" in f for f in summary.failures)
    ledger = Ledger(out / "ledger.jsonl")
    assert sorted(e["state"] for e in ledger.entries.values()).count("diverged") == 4
    key = run_key({"optim": "sgd", "optim.lr": 0.01, "seed": 1}, [])
    assert json.loads((out / "runs" / key / "results.json").read_text())["status"] == "finished"

    again = Runner(spec, out, jobs=2, cwd=ROOT, progress=False, start=start(2)).run()
    assert dict(again.states) == {"failed": 4}  # finished and diverged runs were kept
    with pytest.raises(ConfigError, match="holds another sweep"):
        Runner(spec, out, extra=["trainer.max_epochs=3"])


def test_a_record_after_a_torn_last_line_of_the_ledger_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    Ledger(path).record("a", state="finished")
    with open(path, "a") as f:
        f.write('{"key": "b", "state": "runn')  # the runner was killed mid-append
    ledger = Ledger(path)
    assert set(ledger.entries) == {"a"}  # the torn line is skipped
    ledger.record("c", state="running")
    assert Ledger(path).entries["c"]["state"] == "running"  # started on a line of its own
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and lines[1] == '{"key": "b", "state": "runn'  # left as it was


def test_ledger_appends_survive_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.sweep import ledger as ledger_module

    real_write = os.write
    calls = []

    def short_write(fd: int, data: bytes) -> int:  # the kernel may write fewer bytes than asked
        calls.append(len(data))
        return real_write(fd, data[:7])

    monkeypatch.setattr(ledger_module.os, "write", short_write)
    Ledger(tmp_path / "ledger.jsonl").record("a", state="finished", exit_code=0)
    assert len(calls) > 1
    assert Ledger(tmp_path / "ledger.jsonl").entries["a"]["exit_code"] == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie has exited


def _children(pid: int) -> list[int]:
    """The processes `pid` started (a fork server, or the runs themselves)."""
    tasks = Path(f"/proc/{pid}/task")
    return [int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split()]


@pytest.mark.slow
@pytest.mark.parametrize("workers", MODES)
def test_killed_runner_takes_its_runs_down_and_resumes(tmp_path: Path, workers: str) -> None:
    out = tmp_path / "sweep"
    env = {**os.environ, "STANDIN_SLEEP": "0.2"}
    args = _sweep_cmd(FILES / "standin_grid.yaml", out, "trainer.max_steps=15", workers=workers)
    runner = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    ledger_path = out / "ledger.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:  # until some runs have ended and two more are under way
        entries = Ledger(ledger_path).entries if ledger_path.exists() else {}
        states = [e.get("state") for e in entries.values()]
        pids = [e for e in entries.values() if e.get("state") == "running" and "pid" in e]
        if len(pids) == 2 and len(states) >= 3:  # the PID is recorded just after the start
            break
        time.sleep(0.1)
    else:
        pytest.fail(runner.communicate()[0].decode())
    children = _children(runner.pid)  # fork: the fork server (the runs are its children)
    assert len(children) == (1 if workers == "fork" else 2), children
    runner.kill()  # SIGKILL: the runner cannot clean up
    assert "warm workers" not in runner.communicate()[0].decode()  # fork: every run was forked
    for pid in children:  # the fork server dies with it (PR_SET_PDEATHSIG), as runs do
        for _ in range(100):
            if not _alive(pid):
                break
            time.sleep(0.1)
        assert not _alive(pid)
    running = [e for e in Ledger(ledger_path).entries.values() if e["state"] == "running"]
    for e in running:  # its children got SIGTERM when it died (PR_SET_PDEATHSIG)
        for _ in range(100):
            if not _alive(e["pid"]):
                break
            time.sleep(0.1)
        assert not _alive(e["pid"])
    ended = {k: e for k, e in Ledger(ledger_path).entries.items() if e["state"] in ("finished", "diverged")}  # fmt: skip

    done = subprocess.run(args, cwd=ROOT, env={**env, "STANDIN_SLEEP": "0"}, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 1, done.stderr  # 1: the lr=5 runs crash
    final = Ledger(ledger_path).entries
    assert len(final) == 12 and all(e["state"] != "running" for e in final.values())
    for key, e in ended.items():  # ended runs were not run again
        assert final[key]["time"] == e["time"]
    for e in running:  # interrupted ones were
        assert final[e["key"]]["state"] in ("finished", "diverged", "failed")


@pytest.mark.slow
def test_hyperband_stops_a_run_that_trails_at_a_band(tmp_path: Path, monkeypatch, start) -> None:
    monkeypatch.setenv("STANDIN_SLEEP", "0.15")
    monkeypatch.setattr("harness.sweep.runner.EARLY_STOP_EVERY_S", 0.1)
    spec = load_spec(FILES / "standin_hyperband.yaml")
    summary = Runner(spec, tmp_path / "hb", jobs=1, cwd=ROOT, progress=False, start=start(1)).run()
    # lr 0.01 and 0.02 run their 10 checks; lr 1.0 trails them at the band of 2 checks
    assert dict(summary.states) == {"finished": 2, "stopped": 1}
    stopped = [
        e
        for e in Ledger(tmp_path / "hb" / "ledger.jsonl").entries.values()
        if e["state"] == "stopped"
    ]
    assert stopped[0]["params"]["optim.lr"] == 1.0
    rows = (tmp_path / "hb" / stopped[0]["run_dir"] / "metrics.csv").read_text().splitlines()
    assert len(rows) - 1 < 10


@pytest.mark.slow
@pytest.mark.parametrize("workers", MODES)
def test_runner_stops_its_runs_on_sigterm(tmp_path: Path, workers: str) -> None:
    out = tmp_path / "sweep"
    env = {**os.environ, "STANDIN_SLEEP": "1"}
    runner = subprocess.Popen(_sweep_cmd(FILES / "standin_grid.yaml", out, "trainer.max_steps=20", workers=workers), cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline:  # until two runs are under way (their PIDs recorded)
        entries = Ledger(out / "ledger.jsonl").entries if (out / "ledger.jsonl").exists() else {}
        if sum("pid" in e for e in entries.values()) == 2:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    runner.send_signal(signal.SIGTERM)
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 130, err
    assert "warm workers" not in err  # fork: every run was forked
    assert "start the same command again to resume" in err
    states = {e["state"] for e in Ledger(out / "ledger.jsonl").entries.values()}
    assert states == {"interrupted"}
