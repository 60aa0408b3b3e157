"""Warm workers (`sweep.py run --workers fork`): a run forked from the fork server starts, ends and
is stopped as the same run started as its own process (`--workers process`) does. The runner's
own tests run in both modes (tests/test_sweep.py); here, one run at a time, by the probe program
(tests/sweep_probe.py), and one real train.py run whose W&B offline file is compared."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.rundir.lock import InUse, take
from harness.sweep import process
from harness.sweep.fork_server import unsafe_to_fork
from harness.sweep.runner import Runner
from harness.sweep.spec import load_spec
from harness.sweep.workers import Workers
from tests.conftest import ROOT
from tests.wandb_files import config, history_rows, records, summary

PROBE = ROOT / "tests" / "sweep_probe.py"
MODES = ("fork", "process")


@pytest.fixture
def workers():
    """A fork server that imports nothing heavy (the probe does not need it): fast to start."""
    w = Workers(threads=1, preload=())
    yield w
    w.close()


def _start(mode: str, workers: Workers):
    return workers.start if mode == "fork" else process.start


def _launch(start, run_dir: Path, *args: str, keep: int | None = None) -> process.Job:
    argv = ["/usr/bin/env", sys.executable, str(PROBE), *args, f"hydra.run.dir={run_dir}"]
    return start(run_dir.name, {}, argv, run_dir, ROOT, 1, keep=keep)


def _probe(run_dir: Path) -> dict:
    return json.loads((run_dir / "probe.json").read_text())


@pytest.mark.slow
def test_a_forked_run_starts_as_a_fresh_process_would(tmp_path: Path, workers, monkeypatch) -> None:
    monkeypatch.setenv("PROBE_ENV", "seen")  # the runner's environment reaches the run
    seen = {}
    for mode in MODES:
        job = _launch(_start(mode, workers), tmp_path / mode)
        assert job.proc.wait(timeout=60) == 0
        seen[mode] = _probe(tmp_path / mode)
        assert (tmp_path / mode / process.LOG_FILE).read_text() == "probe ran\n"
    fork, proc = seen["fork"], seen["process"]
    same = ("name", "path0", "cwd", "omp", "wandb_mode", "probe_env", "stdin_null",
            "sigint_default", "sigterm_default", "threads", "os_threads", "pgid")  # fmt: skip
    assert {k: fork[k] for k in same} == {k: proc[k] for k in same}
    assert fork["argv"][:-1] == proc["argv"][:-1] == [str(PROBE)]  # then its hydra.run.dir
    assert fork["name"] == "__main__" and fork["os_threads"] == 1 and fork["probe_env"] == "seen"
    assert len(fork["fds"]) == len(proc["fds"])  # no descriptor of the server leaks into a run
    assert fork["pid"] != workers.server.pid and fork["ppid"] == workers.server.pid
    assert job.proc.pid == proc["pid"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "end, code",
    [
        ("exit:0", 0),
        ("exit:3", 3),
        ("exit:130", 130),
        ("raise", 1),
        ("segv", -11),
        ("interrupt", -2),
    ],
)
def test_exit_statuses_are_those_of_a_process(tmp_path: Path, workers, end: str, code: int) -> None:
    for mode in MODES:
        job = _launch(_start(mode, workers), tmp_path / mode, f"probe.end={end}")
        assert job.proc.wait(timeout=60) == code, mode
        assert job.proc.returncode == code and job.proc.poll() == code
    if end in ("raise", "interrupt"):  # the traceback, as Python prints it, in the run's log
        for mode in MODES:
            log = (tmp_path / mode / process.LOG_FILE).read_text()
            assert "Traceback (most recent call last)" in log, (mode, log)


@pytest.mark.parametrize("mode", MODES)
def test_the_runner_wakes_when_a_run_ends_not_at_the_timeout(tmp_path: Path, workers, mode) -> None:
    start = _start(mode, workers)
    slow = _launch(start, tmp_path / "slow", "probe.end=sleep:20")
    quick = _launch(start, tmp_path / "quick")
    while quick.proc.poll() is None:
        process.wait_any([slow, quick], timeout=60)
    assert quick.proc.returncode == 0
    assert slow.proc.poll() is None  # woken by the quick run's end: not 60 s later
    slow.proc.kill()
    slow.proc.wait(timeout=30)


def test_the_server_composes_a_train_py_runs_choices_for_its_children(monkeypatch) -> None:
    from harness.config import compose as composer
    from harness.sweep import fork_server

    monkeypatch.setattr(composer, "_kept", None)
    composer.keep_compositions()
    fork_server.compose_for(
        fork_server.TRAIN, ["optim=adam", "optim.lr=0.1", "hydra.run.dir=/tmp/x"]
    )
    fork_server.compose_for(str(ROOT / "eval.py"), ["optim=sgd"])  # another program: not composed
    fork_server.compose_for(fork_server.TRAIN, ["optim=nonesuch"])  # the child's to report
    assert list(composer._kept["bases"]) == [("optim=adam",)]


@pytest.mark.slow
def test_a_crash_ends_that_run_only(tmp_path: Path, workers) -> None:
    slow = _launch(workers.start, tmp_path / "slow", "probe.end=sleep:3")
    crash = _launch(workers.start, tmp_path / "crash", "probe.end=segv")
    assert crash.proc.wait(timeout=60) == -signal.SIGSEGV
    assert slow.proc.poll() is None  # still running beside it
    assert slow.proc.wait(timeout=60) == 0
    after = _launch(workers.start, tmp_path / "after")
    assert after.proc.wait(timeout=60) == 0  # the server forks on


@pytest.mark.slow
def test_signals_reach_a_forked_run_as_a_process(tmp_path: Path, workers) -> None:
    for mode in MODES:
        for sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGINT):
            run_dir = tmp_path / f"{mode}-{sig}"
            job = _launch(_start(mode, workers), run_dir, "probe.end=sleep:30")
            while not (run_dir / "probe.json").exists():
                time.sleep(0.05)
            with pytest.raises(subprocess.TimeoutExpired):
                job.proc.wait(timeout=0.1)
            job.proc.send_signal(sig)
            # SIGINT: an uncaught KeyboardInterrupt, which Python ends with SIGINT too
            assert job.proc.wait(timeout=30) == -sig, (mode, sig)
            job.proc.kill()  # after the end: nothing happens, as with Popen


@pytest.mark.slow
def test_the_run_holds_its_lock_until_it_exits_and_the_server_never_does(
    tmp_path: Path, workers
) -> None:
    lock = take(tmp_path / "locks", "run", name="k.lock")
    job = _launch(workers.start, tmp_path / "run", "probe.end=sleep:30", keep=lock.fd)
    lock.release()  # the runner lets go (it ended the run); the child still holds it
    while not (tmp_path / "run" / "probe.json").exists():
        time.sleep(0.05)
    with pytest.raises(InUse):
        take(tmp_path / "locks", "run", name="k.lock")
    job.proc.kill()
    job.proc.wait(timeout=30)
    take(tmp_path / "locks", "run", name="k.lock").release()  # free: no copy left in the server


@pytest.mark.slow
def test_a_dead_server_takes_its_runs_down_and_later_runs_start_as_processes(
    tmp_path: Path, workers, capsys
) -> None:
    job = _launch(workers.start, tmp_path / "a", "probe.end=sleep:30")
    while not (tmp_path / "a" / "probe.json").exists():
        time.sleep(0.05)
    workers.server.kill()
    assert job.proc.wait(timeout=30) < 0  # its PDEATHSIG: it never outlives the server
    later = _launch(workers.start, tmp_path / "b")
    assert later.proc.wait(timeout=60) == 0
    assert isinstance(later.proc, subprocess.Popen)
    assert "fork server" in capsys.readouterr().err


def test_gpu_runs_and_other_programs_start_as_processes(monkeypatch) -> None:
    w = Workers(threads=1, preload=())  # never started: the reasons are decided beforehand
    train = ["/usr/bin/env", sys.executable, "train.py", "optim=adam"]
    monkeypatch.setattr("harness.sweep.workers.has_gpu", lambda: False)
    assert w.why_not(train) is None
    assert "GPU" in w.why_not([*train, "trainer.accelerator=gpu"])
    monkeypatch.setattr("harness.sweep.workers.has_gpu", lambda: True)
    assert "GPU" in w.why_not(train)  # accelerator auto on a machine with a GPU
    assert w.why_not([*train, "trainer.accelerator=cpu"]) is None
    assert "not a Python program" in w.why_not(["/bin/sh", "-c", "true"])
    assert "not a Python program" in w.why_not([sys.executable, "-u", "train.py"])


def test_a_program_beside_its_own_packages_starts_as_a_process(tmp_path: Path) -> None:
    """Forked, it would get the server's harness (or models...), not the ones beside it."""
    w = Workers(threads=1)  # never started: the default preload, decided beforehand
    for own in ("harness", "models", "optim"):
        (tmp_path / own / own).mkdir(parents=True)
        argv = [sys.executable, "train.py", "optim=adam"]
        assert own in w.why_not(argv, tmp_path / own)
        assert own in w.why_not([sys.executable, str(tmp_path / own / "train.py")])
    (tmp_path / "mine").mkdir()
    assert (
        w.why_not([sys.executable, "my_train.py"], tmp_path / "mine") is None
    )  # harness installed
    assert w.why_not([sys.executable, "train.py"], ROOT) is None


def test_a_thread_in_the_server_forbids_the_fork() -> None:
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert "Python thread" in unsafe_to_fork()
    finally:
        stop.set()
        t.join()


@pytest.mark.slow
def test_a_run_ending_does_not_remove_the_servers_wandb_temp_dirs(tmp_path: Path) -> None:
    """wandb makes temporary directories at import, removed at exit: a forked run must not
    remove the server's at its own exit (the next run's images would have nowhere to go)."""
    w = Workers(threads=1, preload=("wandb",))
    try:
        for name in ("a", "b"):
            job = _launch(w.start, tmp_path / name)
            assert job.proc.wait(timeout=60) == 0
            assert _probe(tmp_path / name)["media_tmp_exists"] is True, name
    finally:
        w.close()
    assert not os.path.exists(_probe(tmp_path / "a")["media_tmp"])  # the server's, at its exit


@pytest.mark.slow
def test_a_server_no_run_was_asked_of_ends_by_its_atexit_handlers(
    tmp_path: Path, monkeypatch
) -> None:
    """A sweep with nothing left to run (a resume of a finished one, a rerun whose runs all ended)
    opens the server and never asks it for a run: once it is ready it ends as after a sweep, its
    temporary directories (W&B's, made at import) removed, not by SIGKILL."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))  # the server's tempfile.gettempdir()
    w = Workers(threads=1, preload=("wandb",))
    w.open()
    try:
        assert select.select([w.sock], [], [], 120)[0]  # it has said it is ready
    finally:
        w.close()
    assert w.server.returncode == 0
    assert not list(temp.iterdir())


UNUSABLE = """
import atexit, shutil, tempfile, threading, time
kept = tempfile.mkdtemp()
threading.Thread(target=time.sleep, args=(600,), daemon=True).start()  # the server is unusable
atexit.register(lambda: (time.sleep(0.5), shutil.rmtree(kept)))  # its cleanup takes a while
"""


@pytest.mark.slow
def test_an_unusable_server_ends_by_its_atexit_handlers(tmp_path: Path, monkeypatch) -> None:
    """A server that could not be used (a thread ran after its imports) exits by itself at once:
    closing the workers waits for it rather than killing its cleanup."""
    (tmp_path / "starts_a_thread.py").write_text(UNUSABLE)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    w = Workers(threads=1, preload=("starts_a_thread",))
    w.open()
    try:
        assert select.select([w.sock], [], [], 120)[0]  # it has said why it is unusable
        w.collect()
        assert "could not start" in w.broken
    finally:
        w.close()
    assert w.server.returncode == 1
    assert not list(temp.iterdir())


@pytest.mark.slow
def test_wandb_offline_files_are_those_of_a_train_py_process(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    w = Workers(threads=1)  # the real fork server: torch, Lightning, W&B, Hydra, the harness
    files = {}
    try:
        for mode in MODES:
            run_dir = tmp_path / mode
            argv = [sys.executable, "train.py", "data=digits", "model=mlp", "callbacks=sweep",
                    "trainer.max_epochs=-1", "trainer.max_steps=6", "trainer.limit_val_batches=2",
                    "trainer.val_check_interval=3", "trainer.log_every_n_steps=1",
                    "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}"]  # fmt: skip
            job = _start(mode, w)(mode, {}, argv, run_dir, ROOT, 1)
            assert job.proc.wait(timeout=300) == 0, (run_dir / process.LOG_FILE).read_text()
            (found,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
            files[mode] = found
    finally:
        w.close()
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):  # composed in the server (fork)
        text = {mode: (tmp_path / mode / ".hydra" / name).read_text().replace(str(tmp_path / mode), "RUN")
                for mode in MODES}  # fmt: skip
        assert text["fork"] == text["process"], name
    fork, proc = files["fork"], files["process"]
    assert history_rows(fork) == history_rows(proc)
    timing = ("_runtime", "_timestamp", "_wandb", "runtime_s", "time/", "perf/")
    keep = lambda d: {k: v for k, v in d.items() if not k.startswith(timing)}  # noqa: E731
    assert keep(summary(fork)).keys() == keep(summary(proc)).keys()
    for key, value in keep(summary(proc)).items():  # same seed, same data: the same numbers
        if isinstance(value, float):
            assert summary(fork)[key] == pytest.approx(value, rel=1e-5), key
    skip = ("_wandb", "meta")  # meta: the run's directory, git, times
    assert {k: v for k, v in config(fork).items() if not k.startswith(skip)} == {
        k: v for k, v in config(proc).items() if not k.startswith(skip)
    }
    kinds = lambda p: sorted({r.WhichOneof("record_type") for r in records(p)})  # noqa: E731
    assert kinds(fork) == kinds(proc)
    # what W&B records of the process: the program, its arguments, the interpreter
    env = {mode: next(r.environment for r in records(files[mode]) if r.HasField("environment"))
           for mode in MODES}  # fmt: skip
    for field in ("program", "code_path", "code_path_local", "executable", "python"):
        assert getattr(env["fork"], field) == getattr(env["process"], field), field
    assert list(env["fork"].args)[:-1] == list(env["process"].args)[:-1]  # but hydra.run.dir


@pytest.mark.slow
def test_a_diverging_train_py_run_ends_that_run_only_and_the_sweep_goes_on(
    tmp_path: Path, capsys
) -> None:
    """Real train.py runs, forked: lr 1e30 diverges (exit 3, a result), lr 0.05 finishes."""
    sweep = tmp_path / "lr.yaml"
    sweep.write_text(
        "name: fork-lr\nprogram: train.py\nmethod: grid\n"
        "metric: {name: best/val/acc, goal: maximize}\n"
        "command: ['${env}', '${interpreter}', '${program}', '${args_no_hyphens}']\n"
        "parameters:\n  optim.lr: {values: [1e30, 0.05]}\n"
    )
    fixed = ["data=digits", "model=mlp", "optim=sgd", "scheduler=constant", "logger.wandb=null",
             "callbacks=sweep", "trainer.max_epochs=-1", "trainer.max_steps=10",
             "trainer.limit_val_batches=2", "trainer.enable_progress_bar=false"]  # fmt: skip
    workers = Workers(threads=max(1, os.cpu_count() or 1))  # what Runner gives a run at jobs=1
    try:
        runner = Runner(load_spec(sweep), tmp_path / "out", extra=fixed, cwd=ROOT, progress=False,
                        start=workers.start)  # fmt: skip
        summary = runner.run()
        assert "warm workers" not in capsys.readouterr().err  # both were forked
    finally:
        workers.close()
    assert dict(summary.states) == {"diverged": 1, "finished": 1}
    codes = {e["params"]["optim.lr"]: e["exit_code"] for e in runner.ledger.entries.values()}
    assert codes == {"1e30": 3, 0.05: 0}  # YAML reads 1e30 as a string; train.py as a number


def test_workers_with_a_submitit_launcher_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys
) -> None:
    from harness.sweep.main import main

    sweep = str(ROOT / "tests" / "sweep_files" / "standin_grid.yaml")
    assert main(["run", sweep, "--out", str(tmp_path / "o"), "--launcher", "local", "--workers", "fork"]) == 2  # fmt: skip
    assert "--workers is for --launcher process" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["run", "rerun"])
def test_the_fork_server_imports_while_the_runner_reads_its_sweep(
    command: str, tmp_path: Path, monkeypatch
) -> None:
    """Its imports (~8 s) run beside the runner's own start, not after it."""
    from harness.errors import ConfigError
    from harness.report import local
    from harness.sweep import main, rerun, spec

    seen = []
    monkeypatch.setattr(Workers, "open", lambda self: seen.append("server"))

    def refuse(path):
        seen.append("sweep read")
        raise ConfigError("stop here")

    monkeypatch.setattr(spec, "load_spec", refuse)
    monkeypatch.setattr(local, "read_local", lambda source: None)
    monkeypatch.setattr(rerun, "best_sweep_files", lambda *a: [tmp_path / "best.yaml"])
    (tmp_path / "sweep.json").write_text(json.dumps({"sweep": {}}))
    argv = ["run", str(ROOT / "sweeps" / "optim_lr_digits.yaml"), "--out", str(tmp_path / "s")]
    assert main.main(argv if command == "run" else ["rerun", str(tmp_path)]) == 2
    assert seen == ["server", "sweep read"]
