"""Divergence, W&B failures and secrets: a run that goes wrong stops cleanly and says so, and a run
whose W&B server fails goes on offline with nothing lost; no secret reaches any record."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import torch

from harness.errors import Diverged
from harness.run.callbacks import StopOnNonFiniteLoss
from harness.run.recipe import train
from harness.rundir.files import logged_rows
from harness.rundir.secrets import redact, secret_values
from tests.conftest import FAST, ROOT, compose
from tests.wandb_files import config, history_rows, summary

FAST_WANDB = [o for o in FAST if not o.startswith("logger.wandb")]  # FAST turns W&B off
# SGD with lr 1e30 makes the loss NaN at the second step (the first update overflows the logits).
DIVERGING = ["data=digits", "model=mlp", "optim=sgd", "optim.lr=1e30", "scheduler=constant",
             "trainer.max_steps=10", "checkpoint_every_n_steps=1"]  # fmt: skip


def offline_file(run_dir: Path) -> Path:
    run_id = (run_dir / "checkpoints" / "wandb_id.txt").read_text().strip()
    (path,) = (run_dir / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")
    return path


@pytest.mark.slow
def test_divergence_stops_cleanly_keeps_the_last_good_checkpoint_and_exits_3(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    args = [*FAST_WANDB, *DIVERGING, "logger.wandb.mode=offline", f"hydra.run.dir={run_dir}"]
    out = subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert out.returncode == 3, out.stderr[-2000:]
    assert "diverged at step 1: the training loss is nan" in out.stderr
    assert "Traceback" not in out.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "diverged" and results["diverged_at_step"] == 1
    assert results["steps"] == 1  # the NaN step was never taken
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 1
    assert all(torch.isfinite(t).all() for t in last["state_dict"].values())
    assert summary(offline_file(run_dir))["status"] == "diverged"
    losses = [float(r["train/loss"]) for r in _csv(run_dir) if r.get("train/loss")]
    assert losses and all(math.isfinite(x) for x in losses)  # no NaN was logged


def _csv(run_dir: Path) -> list[dict]:
    import csv

    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_a_learning_rate_sweep_survives_a_diverging_run(tmp_path: Path) -> None:
    statuses = {}
    for lr in ("1e30", "0.05"):
        cfg = compose([*FAST, *DIVERGING, f"optim.lr={lr}"])
        statuses[lr] = train(cfg, tmp_path / lr)["status"]  # returns; never raises
    assert statuses == {"1e30": "diverged", "0.05": "finished"}


def test_divergence_seen_at_a_later_logging_step_reports_the_first_bad_step(tmp_path: Path) -> None:
    # The guard reads the loss only on logging steps (no per-step device sync), so step 1's NaN
    # loss is trained on; saving last.ckpt after it (checkpoint_every_n_steps=1) finds NaN weights
    # and stops the run. The first bad step is the one reported; the NaN weights are not saved.
    cfg = compose([*FAST, *DIVERGING, "trainer.log_every_n_steps=4"])
    results = train(cfg, tmp_path)
    assert results["status"] == "diverged" and results["diverged_at_step"] == 1
    assert results["steps"] == 2
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 1
    assert all(torch.isfinite(t).all() for t in last["state_dict"].values())


def test_non_finite_weights_are_never_checkpointed() -> None:
    guard = StopOnNonFiniteLoss()
    good = {"state_dict": {"w": torch.ones(2), "steps": torch.tensor(3)}}
    guard.on_save_checkpoint(_Trainer(), None, good)  # type: ignore[arg-type]
    bad = {"state_dict": {"w": torch.tensor([1.0, math.inf])}}
    with pytest.raises(Diverged, match=r"weights are not finite \(w\)"):
        guard.on_save_checkpoint(_Trainer(), None, bad)  # type: ignore[arg-type]
    with pytest.raises(Diverged, match="loss is nan"):
        guard.on_before_backward(_Trainer(), None, torch.tensor(math.nan))  # type: ignore[arg-type]


class _Trainer:
    """As much of a Trainer as the guard reads: a logging step (log_every_n_steps=1), step 7."""

    global_step = 7
    log_every_n_steps, max_steps = 1, -1

    class fit_loop:
        @staticmethod
        def _should_accumulate() -> bool:
            return False

        class epoch_loop:
            _batches_that_stepped = 7


# --- W&B failures ----------------------------------------------------------------------------


class _Rejecting(BaseHTTPRequestHandler):
    """A W&B server that rejects every request's API key."""

    def do_POST(self) -> None:
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"errors": [{"message": "invalid API key"}]}')

    do_GET = do_POST

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def rejecting_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Rejecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("server", ["unreachable", "rejects the key"])
def test_wandb_failure_falls_back_to_offline_and_loses_nothing(
    server: str,
    rejecting_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "http://127.0.0.1:9" if server == "unreachable" else rejecting_server  # port 9: closed
    monkeypatch.setenv("WANDB_BASE_URL", url)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = compose([*FAST_WANDB, "data=digits", "model=mlp", "logger.wandb.mode=online",
                   "logger.wandb.init_timeout=2"])  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="harness.tracking.wandb"):
        results = train(cfg, tmp_path)
    assert results["status"] == "finished" and results["wandb_mode"] == "offline"
    assert (
        "Logging offline instead; upload later with: python -m harness.tracking.wandb_sync --run"
        in caplog.text
    )
    rows = Counter(history_rows(offline_file(tmp_path)))
    assert rows == logged_rows(tmp_path / "metrics.csv")  # every metric reached the offline run


# --- secrets ---------------------------------------------------------------------------------

SECRET = "sk-test-5f3a9c1e7b2d4f60"


@pytest.mark.slow
def test_secrets_from_the_environment_reach_no_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_TEST_TOKEN", SECRET)
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)  # offline: used by nothing, recorded nowhere
    monkeypatch.setattr(sys, "argv", ["train.py", f"logger.wandb.tags=[{SECRET}]"])
    cfg = compose([*FAST_WANDB, "data=digits", "model=mlp", "logger.wandb.mode=offline",
                   "+notes=${oc.env:HARNESS_TEST_TOKEN}", f"logger.wandb.tags=[{SECRET}]"])  # fmt: skip
    results = train(cfg, tmp_path)
    assert results["status"] == "finished"
    assert config(offline_file(tmp_path))["notes"] == "***"  # the key stays, its value does not
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data, path
            assert b"k" * 40 not in data, path


def test_redaction_of_values() -> None:
    env = {"HF_TOKEN": SECRET, "KEY": "short", "PATH": "/usr/bin:/bin-and-more"}
    assert secret_values(env) == [SECRET]  # by name; too-short values would mask ordinary text
    nested = {"a": [f"x{SECRET}y", 3], "b": {"c": SECRET}}
    assert redact(nested, [SECRET]) == {"a": ["x***y", 3], "b": {"c": "***"}}


def test_the_guard_keeps_few_losses_between_reads_and_reports_the_first_bad_one() -> None:
    # Losses are kept on the device between the reads (no per-step sync), at most FOLD of them.
    guard, trainer = StopOnNonFiniteLoss(), _Trainer()
    trainer.log_every_n_steps = 0  # no logging step: nothing reads the loss but check()
    for step in range(3 * guard.FOLD):
        trainer.global_step = step
        bad = {5: math.nan, 2 * guard.FOLD: math.inf}.get(step, 1.0)
        guard.on_before_backward(trainer, None, torch.tensor(bad))  # type: ignore[arg-type]
        assert len(guard.losses) < guard.FOLD
    with pytest.raises(Diverged, match="loss is nan") as stopped:
        guard.check(trainer)  # type: ignore[arg-type]
    assert stopped.value.step == 5
