"""The sweep runner under mistakes and company (issue 13, items 5-7): runners sharing one --out
never delete or redo each other's runs; a refused sweep file writes nothing; a secret given to a
sweep reaches its runs through the environment and is in none of its files. Runs are the stand-in
program (tests/sweep_standin.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.rundir.lock import take
from harness.sweep.ledger import Ledger
from harness.sweep.runner import Runner
from harness.sweep.spec import load_spec, run_key
from tests.conftest import ROOT

FILES = ROOT / "tests" / "sweep_files"
SMALL = """name: standin-small
program: tests/sweep_standin.py
method: grid
metric: {name: val/loss, goal: minimize}
command: ["${env}", "${interpreter}", "${program}", "${args_no_hyphens}"]
parameters:
  optim.lr: {values: [0.01, 0.02]}
"""


def _small(tmp_path: Path, text: str = SMALL) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(text)
    return path


def _starts(log: Path) -> Counter:
    """How many times each run (by key) was started, from the stand-in's $STANDIN_LOG."""
    lines = log.read_text().splitlines() if log.exists() else []
    return Counter(line.split()[1] for line in lines if line.startswith("start "))


def _ledger_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]


# -- item 5: runners sharing one --out ---------------------------------------------------------


@pytest.mark.slow  # starts processes
def test_two_runners_on_one_out_share_its_runs_and_run_each_once(tmp_path: Path) -> None:
    out, log = tmp_path / "sweep", tmp_path / "starts.log"
    env = {**os.environ, "STANDIN_SLEEP": "0.1", "STANDIN_LOG": str(log)}
    args = [sys.executable, "sweep.py", "run", str(FILES / "standin_grid.yaml"), "--out", str(out), "--jobs", "2", "--no-report", "trainer.max_steps=8"]  # fmt: skip
    runners = [subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]  # fmt: skip
    first = None
    while first is None:
        first = next((r for r in runners if r.poll() is not None), None)
        time.sleep(0.1)
    # whichever runner ends first, it ends when every run has ended (it waits for the other's)
    states = {k: e["state"] for k, e in Ledger(out / "ledger.jsonl").entries.items()}
    outputs = [r.communicate(timeout=300)[0] for r in runners]
    assert all(r.returncode in (0, 1) for r in runners), outputs
    assert sorted(Counter(states.values()).items()) == [("diverged", 4), ("failed", 4), ("finished", 4)], outputs  # fmt: skip
    assert _starts(log) == Counter({k: 1 for k in states}), outputs  # no run done twice
    launches = Counter(e["key"] for e in _ledger_lines(out) if e.get("state") == "running")
    assert set(launches.values()) == {1}


BAYES = """name: standin-bayes
program: tests/sweep_standin.py
method: bayes
run_cap: 6
metric: {name: val/loss, goal: minimize}
command: ["${env}", "${interpreter}", "${program}", "${args_no_hyphens}"]
parameters:
  optim.lr: {distribution: log_uniform_values, min: 0.001, max: 0.1}
"""


@pytest.mark.slow  # starts processes
def test_two_runners_on_one_bayes_sweep_keep_to_its_run_cap(tmp_path: Path) -> None:
    out, log = tmp_path / "sweep", tmp_path / "starts.log"
    env = {**os.environ, "STANDIN_SLEEP": "0.2", "STANDIN_LOG": str(log)}
    args = [sys.executable, "sweep.py", "run", str(_small(tmp_path, BAYES)), "--out", str(out), "--jobs", "2", "--no-report"]  # fmt: skip
    runners = [subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]  # fmt: skip
    outputs = [r.communicate(timeout=600)[0] for r in runners]
    assert [r.returncode for r in runners] == [0, 0], outputs
    entries = Ledger(out / "ledger.jsonl").entries
    assert len(entries) == 6 and {e["state"] for e in entries.values()} == {"finished"}, outputs
    assert _starts(log) == Counter({k: 1 for k in entries})


@pytest.mark.slow
def test_a_runner_leaves_alone_a_run_another_runner_holds(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    spec = load_spec(_small(tmp_path))
    key = run_key({"optim.lr": 0.02}, [])
    marker = out / "runs" / key / "written-by-the-holder"
    marker.parent.mkdir(parents=True)
    marker.write_text("mine")
    lock = take(out / "locks", "run", name=f"{key}.lock")  # as another runner holds it
    seen = {}

    def release() -> None:  # the holder ends the run: until then, its directory is untouched
        other, deadline = run_key({"optim.lr": 0.01}, []), time.time() + 300
        while time.time() < deadline and not Ledger(out / "ledger.jsonl").done(other):
            time.sleep(0.1)  # the runner does the other run meanwhile
        time.sleep(1.0)  # and waits for this one
        seen["marker"] = marker.exists()
        seen["other run"] = Ledger(out / "ledger.jsonl").entries.get(other, {}).get("state")
        lock.release()

    holder = threading.Thread(target=release)
    holder.start()
    summary = Runner(spec, out, cwd=ROOT, progress=False).run()  # waits for the held run
    holder.join()
    assert seen == {"marker": True, "other run": "finished"}
    assert dict(summary.states) == {"finished": 2}  # then took it: the holder did not record it


@pytest.mark.slow
def test_a_run_that_ended_before_its_runner_recorded_it_is_not_done_again(tmp_path: Path) -> None:
    out, log = tmp_path / "sweep", tmp_path / "starts.log"
    os.environ["STANDIN_LOG"] = str(log)
    try:
        spec = load_spec(_small(tmp_path))
        Runner(spec, out, cwd=ROOT, progress=False).run()
        lines = (out / "ledger.jsonl").read_text().splitlines()
        # the runner was killed after a run exited, before it wrote how it ended
        (out / "ledger.jsonl").write_text("\n".join(lines[:-1]) + "\n")
        again = Runner(spec, out, cwd=ROOT, progress=False).run()
    finally:
        del os.environ["STANDIN_LOG"]
    assert dict(again.states) == {}
    assert set(_starts(log).values()) == {1}
    last = Ledger(out / "ledger.jsonl").entries[json.loads(lines[-1])["key"]]
    assert last["state"] == "finished" and last["recovered"] is True


# -- item 6: check first, write after -----------------------------------------------------------


def test_a_refused_sweep_file_writes_nothing_and_the_fixed_file_then_runs(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    bad = _small(tmp_path, SMALL.replace("[0.01, 0.02]", "[0.01, -1]"))
    with pytest.raises(ConfigError, match=r"optim\.lr=-1: optim\.lr must be a positive number"):
        Runner(load_spec(bad), out, cwd=ROOT, progress=False).run()
    assert not out.exists()
    fixed = _small(tmp_path)
    summary = Runner(load_spec(fixed), out, cwd=ROOT, progress=False).run()
    assert dict(summary.states) == {"finished": 2}


def test_a_sweep_file_that_is_not_yaml_is_one_line_naming_where(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmethod: grid\nparameters:\n  optim: {values: [sgd, adam]\n")
    with pytest.raises(ConfigError) as e:
        load_spec(bad)
    assert "\n" not in str(e.value)
    assert str(e.value).startswith(f"{bad} is not valid YAML: line 5, column 1: expected ',' or ")
    assert "flow mapping that starts at line 4, column 10" in str(e.value)


def test_an_out_that_is_a_file_is_one_line(tmp_path: Path, capsys) -> None:
    from harness.sweep.main import main

    out = tmp_path / "afile"
    out.write_text("mine")
    assert main(["run", str(_small(tmp_path)), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert (
        err.strip() == f"error: --out {out} is a file; give a folder (new, or a sweep's to resume)"
    )
    assert out.read_text() == "mine"


@pytest.mark.slow
def test_rerun_of_a_folder_that_is_not_a_finished_sweep_is_one_line(tmp_path: Path, capsys) -> None:
    from harness.sweep.main import main

    assert main(["rerun", str(tmp_path / "none"), "--seeds", "2"]) == 2
    assert "is not a sweep directory (no sweep.json)" in capsys.readouterr().err
    out = tmp_path / "sweep"  # a sweep still under way (or stopped): one run of two ended
    spec = load_spec(_small(tmp_path))
    runner = Runner(spec, out, cwd=ROOT, progress=False)
    runner.run()
    ledger = Ledger(out / "ledger.jsonl")
    key = next(iter(ledger.entries))
    ledger.record(key, state="running")
    assert main(["rerun", str(out), "--seeds", "2"]) == 2
    err = capsys.readouterr().err
    assert "is not finished: 1 of 2 runs ended" in err and len(err.strip().splitlines()) == 1
    assert not (out / "rerun").exists()


@pytest.mark.parametrize("args", [["--jobs", "two"], ["--workers", "forks"], ["--bogus"]])
def test_a_bad_option_is_one_line(args: list[str], tmp_path: Path, capsys) -> None:
    from harness.sweep.main import main

    with pytest.raises(SystemExit) as e:
        main(["run", str(_small(tmp_path)), "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and err.endswith(" --help)")
    assert not (tmp_path / "o").exists()


# -- item 7: secrets ----------------------------------------------------------------------------


def test_a_secret_given_to_a_sweep_is_in_no_file_and_no_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    secret = "hf_s3cr3tTokenValue0123"
    monkeypatch.setenv("HF_TOKEN", secret)
    out = tmp_path / "sweep"
    spec = load_spec(_small(tmp_path))
    summary = Runner(spec, out, extra=[f"+notes=run-{secret}"], cwd=ROOT, progress=False).run()
    assert dict(summary.states) == {"finished": 2}
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"sweep.json", "plan.json", "ledger.jsonl", "argv.json"} <= {p.name for p in files}
    assert [p for p in files if secret.encode() in p.read_bytes()] == []
    ref = "+notes=run-${oc.env:HF_TOKEN}"
    key = run_key({"optim.lr": 0.01}, [ref])  # the key names the run by what its argv says
    assert ref in json.loads((out / "runs" / key / "argv.json").read_text())
    results = json.loads((out / "runs" / key / "results.json").read_text())
    assert results["notes_sha256"] == hashlib.sha256(f"run-{secret}".encode()).hexdigest()

    monkeypatch.setenv("HF_TOKEN", "hf_aRotatedToken456789")  # a new token: the same sweep
    again = Runner(spec, out, extra=["+notes=run-hf_aRotatedToken456789"], cwd=ROOT, progress=False)  # fmt: skip
    assert dict(again.run().states) == {}
