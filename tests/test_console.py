"""Where people look first: a run ends with its closing block on the console, without the noise
Lightning, torch and W&B print by default, and train.log is the log of the run; a multirun ends
with its table, and a bad config in one job is that job's failure only."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

NOISE = (
    "anonymous setting has no effect",  # W&B
    "💡 Tip",  # Lightning's litlogger / litmodels tips
    "exists and is not empty",  # Lightning's ModelCheckpoint on a new run directory
    "LeafSpec",  # torch's deprecation, raised inside Lightning's loops
    "multiple `ModelCheckpoint` callbacks",
    "`weights_only` was not set",
    "Run summary:",  # W&B's own closing tables
    "Run history:",
)


def _train(args: list[str], wandb: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": wandb}
    env.pop("WANDB_API_KEY", None)
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


@pytest.mark.slow
def test_the_quick_start_ends_with_its_closing_block_and_no_noise(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    # the README's quick start, cut to 40 steps
    out = _train(["data=digits", "model=cnn", "trainer.max_steps=40", f"hydra.run.dir={run_dir}"],
                 wandb="offline")  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    closing = [
        f"run finished: best/val/acc {results['best/val/acc']:.4g}",
        f"test (that checkpoint): test/loss {results['test/loss']:.4g}",
        f"test/acc {results['test/acc']:.4g}",
        f"run directory: {run_dir}",
        f"report: python -m harness.report {run_dir}",
        f"W&B (offline), upload with: python -m harness.tracking.wandb_sync --run {run_dir}",
    ]
    for line in closing:
        assert line in out.stdout, out.stdout[-3000:]
    console = out.stdout + out.stderr
    for noise in NOISE:
        assert noise not in console, noise
    log = (run_dir / "train.log").read_text()
    for line in ("`Trainer.fit` stopped: `max_steps=40` reached", "Restoring states from",
                 "[lightning.pytorch", *closing):  # fmt: skip
        assert line in log, line


@pytest.mark.slow
def test_a_bad_config_in_one_job_leaves_the_other_jobs_running(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "multi"
    out = _train(["-m", "experiment=cpu_digits", "optim=sgd", "callbacks=[]", "trainer.max_steps=20",
                  "trainer.enable_progress_bar=false", "logger.wandb=null", "optim.lr=-1,0.01",
                  f"hydra.sweep.dir={sweep_dir}"], wandb="disabled")  # fmt: skip
    assert out.returncode == 1, out.stderr[-3000:]
    assert "error: optim.lr" in out.stderr and "Traceback" not in out.stderr
    runs = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())
    assert runs == ["1"]  # the refused job left nothing behind
    assert json.loads((sweep_dir / "1" / "results.json").read_text())["status"] == "finished"
    table = out.stdout[out.stdout.index("multirun: 2 runs") :]
    assert "1 finished, 1 bad config" in table and "optim.lr=0.01" in table
    assert "bad config" in table and "optim.lr=-1: optim.lr must be a positive number" in table


def _fake_run(run_dir: Path, lr: float, acc: float | None, status: str = "finished") -> None:
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text(f"- optim=sgd\n- optim.lr={lr}\n")
    results = {"status": status, "monitor": "val/acc", "mode": "max", "test/acc": acc}
    if acc is not None:
        results["best/val/acc"] = acc
    (run_dir / "results.json").write_text(json.dumps(results))


def test_the_table_s_columns_line_up_under_its_header_with_a_sweep_s_run_keys(
    tmp_path: Path,
) -> None:
    from harness.run.summary import multirun_table, sweep_runs

    _fake_run(tmp_path / "20f451b5301c", lr=0.1, acc=0.4722)
    title, header, row = multirun_table(sweep_runs(tmp_path, since=0), [])[0:3]
    assert title.startswith("multirun: 1 run ("), title  # not "1 runs"
    start = header.index("status")
    assert row[start - 1] == " " and row[start : start + 8] == "finished", (header, row)
    end = header.index("best/val/acc") + len("best/val/acc")  # numbers right-aligned under it
    assert row[end - 6 : end] == "0.4722", (header, row)


def test_the_table_fits_one_screen_and_marks_the_best_run(tmp_path: Path) -> None:
    from harness.run.summary import MAX_ROWS, multirun_table, objective, sweep_runs

    for i in range(MAX_ROWS + 5):
        _fake_run(tmp_path / str(i), lr=10.0**-i, acc=i / 100)
    _fake_run(tmp_path / "99", lr=1e30, acc=None, status="diverged")
    runs = sweep_runs(tmp_path, since=0)
    lines = multirun_table(
        runs, [("/x/100", "optim.lr must be positive", ["optim=sgd", "optim.lr=-1"])]
    )
    assert lines[0].startswith(f"multirun: {MAX_ROWS + 7} runs (")
    assert "1 diverged" in lines[0] and "1 bad config" in lines[0]
    rows = [line for line in lines if line[2:].split(" ", 1)[0].isdigit()]
    assert len(rows) == MAX_ROWS + 1  # the best ones, and the bad config
    (best,) = [line for line in rows if line.startswith("*")]
    assert best.split()[1:4] == [str(MAX_ROWS + 4), "finished", f"{(MAX_ROWS + 4) / 100:.4g}"]
    assert "optim=sgd" not in best  # only what differs between runs
    assert any("more (not among" in line for line in lines)
    assert (
        objective({"status": "diverged", "best/val/acc": 0.9, "monitor": "val/acc"}, "max")
        == -math.inf
    )
    assert objective({"status": "finished", "monitor": "val/loss"}, "min") == math.inf
    assert objective(dict(runs[3][1]), "max") == 0.03
