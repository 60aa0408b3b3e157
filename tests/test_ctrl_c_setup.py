"""Ctrl-C while a run is still setting up (its checks, building its parts) ends it as Ctrl-C in
training does: one line, exit status 130 (interrupted), no traceback, and the same command runs
again. As `python train.py` and as a sweep's run (forked from the fork server, or a process),
whose output.log then holds that line, not a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.rundir.files import EXIT_STATUS
from harness.sweep import process
from harness.sweep.workers import Workers
from tests.conftest import FAST, ROOT

ENV_ARGS = ["data=digits", "model=mlp", *FAST]
# where the SIGINT lands: in the checks (nothing written yet), or building the run (its directory
# written: .hydra/, train.log, the loggers' files)
STAGES = {"checks": None, "build": ".hydra/config.yaml"}


def ctrl_c(run_dir: Path, stage: str) -> str:
    """The probe (tests.probes.SignalWhenMade): SIGINT once, at `stage`."""
    marker = run_dir.parent / f"{run_dir.name}-signalled"
    after = STAGES[stage]
    when = f",after:'{run_dir / after}'" if after else ""
    return f"+callbacks.ctrl_c={{_target_:tests.probes.SignalWhenMade,signal:SIGINT,marker:'{marker}'{when}}}"


def train(run_dir: Path, stage: str) -> list[str]:
    return [
        sys.executable,
        "train.py",
        *ENV_ARGS,
        ctrl_c(run_dir, stage),
        f"hydra.run.dir={run_dir}",
    ]


def assert_one_interrupted_line(text: str) -> None:
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
    said = [line for line in text.splitlines() if "interrupted" in line]
    assert len(said) == 1 and said[0].startswith("interrupted; "), text[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_ctrl_c_in_set_up_is_one_line_exit_130_and_the_same_command_runs_again(
    tmp_path: Path, stage: str
) -> None:
    run_dir = tmp_path / "run"
    done = subprocess.run(train(run_dir, stage), cwd=ROOT, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == EXIT_STATUS["interrupted"], done.stderr[-3000:]
    assert "Traceback" not in done.stdout
    assert_one_interrupted_line(done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr  # nothing else on stderr
    again = subprocess.run(train(run_dir, stage), cwd=ROOT, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((run_dir / "results.json").read_text())["status"] == "finished"


@pytest.mark.slow
def test_ctrl_c_in_a_sweep_runs_set_up_is_one_line_in_its_log(tmp_path: Path) -> None:
    workers = Workers(threads=1)  # the real fork server: a forked run's set-up is short
    try:
        for mode, start in (("fork", workers.start), ("process", process.start)):
            run_dir = tmp_path / mode
            job = start(mode, {}, train(run_dir, "build"), run_dir, ROOT, 1)
            log = run_dir / process.LOG_FILE
            assert job.proc.wait(timeout=300) == EXIT_STATUS["interrupted"], log.read_text()[-3000:]
            assert_one_interrupted_line(log.read_text())
    finally:
        workers.close()


def test_ctrl_c_a_library_turned_into_its_own_error_is_interrupted_not_bad_input(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """OmegaConf, interrupted mid-composition, raises an AttributeError, which the checks report
    as a ConfigError (seen with SIGINT 0.4 s after start): still Ctrl-C, not exit 2."""
    from harness.config import command
    from harness.errors import ConfigError
    from harness.run.app import run_command

    def check_command(overrides: list[str]) -> None:
        try:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                raise AttributeError("'NoneType' object has no attribute '_invalidate_flags_cache'")  # noqa: B904
        except AttributeError as e:
            raise ConfigError(str(e)) from None

    monkeypatch.setattr(command, "check_command", check_command)
    monkeypatch.setattr("signal.signal", lambda *args: None)  # this process keeps its Ctrl-C
    status = run_command([f"hydra.run.dir={tmp_path / 'run'}"])
    assert status == EXIT_STATUS["interrupted"]
    assert_one_interrupted_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


FIRST_IMPORT = """
import builtins, os, runpy, sys
real = builtins.__import__
def hook(name, *args, **kwargs):
    if name.split(".")[0] == "torch" and "torch" not in sys.modules:
        import signal
        print("numpy first" if "numpy" in sys.modules else "torch first", flush=True)
        print("SIGINT:", getattr(signal.getsignal(signal.SIGINT), "__qualname__", "?"), flush=True)
        os._exit(0)
    return real(name, *args, **kwargs)
builtins.__import__ = hook
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


def test_a_run_imports_numpy_before_torch_whose_start_up_would_lose_a_ctrl_c(
    tmp_path: Path,
) -> None:
    """torch's C start-up imports numpy and clears whatever that import raised, a Ctrl-C's
    KeyboardInterrupt too: the run went on, and crashed later on the half-imported numpy (seen
    here: 6 of 30 SIGINTs 0.3-0.7 s into `import torch` lost; none with numpy imported first)."""
    args = [*ENV_ARGS, f"hydra.run.dir={tmp_path / 'run'}"]
    done = subprocess.run([sys.executable, "-c", FIRST_IMPORT, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    said = done.stdout.strip().splitlines()
    assert said[0] == "numpy first", done.stdout + done.stderr[-2000:]
    assert said[1] == "SIGINT: ignore_later_ctrl_c.<locals>.first"  # set before any import


def test_after_the_first_ctrl_c_of_a_train_py_process_later_ones_are_ignored() -> None:
    """A sweep's run gets the terminal's Ctrl-C and then the runner's: the second must not land
    in the handling of the first (seen: a traceback from the first line of that handling)."""
    import os
    import signal

    from harness.run.app import ignore_later_ctrl_c

    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as a fresh train.py has it
    try:
        ignore_later_ctrl_c()  # what train.py does first
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
