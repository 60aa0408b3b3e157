"""A run's W&B name comes from its recipe (logger.wandb.name replaces it); a sweep's run says
job_type=sweep and carries each recipe tag once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.run.meta import run_name, short_number
from harness.sweep.spec import command, load_spec
from tests.conftest import FAST, ROOT, compose
from tests.wandb_files import records


def test_short_numbers_read_as_written() -> None:
    got = [short_number(x) for x in (3e-4, 1e-3, 0.00316, 0.1, 0.03, 1.0, 100.0, 1.5e-4)]
    assert got == ["3e-4", "1e-3", "3.16e-3", "0.1", "0.03", "1", "100", "1.5e-4"]


def test_name_from_the_recipe() -> None:
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(compose(["optim=adamw", "optim.lr=3e-4"]), resolve=True)
    assert run_name(cfg, {"optim": "adamw"}) == "adamw-lr3e-4-s0"
    # outside Hydra (no choices): the optimizer's class
    assert run_name({**cfg, "seed": 2}, {}) == "adamw-lr3e-4-s2"
    assert run_name(cfg, {"optim": "momentum"}).startswith("momentum-")


def run_record(run_dir: Path):
    (path,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    return next(r.run for r in records(path) if r.WhichOneof("record_type") == "run")


@pytest.mark.slow
def test_a_sweep_run_is_named_typed_and_tagged_once(tmp_path: Path) -> None:
    spec = load_spec(ROOT / "sweeps" / "optim_lr_digits.yaml")
    params = {"data": "digits", "model": "mlp", "scheduler": "constant", "optim": "adam",
              "optim.lr": 0.001, "seed": 1, "trainer.max_epochs": -1}  # fmt: skip
    run_dir = tmp_path / "run"
    fast = [o for o in FAST if not o.startswith(("logger.wandb", "callbacks="))]
    argv = command(spec, params, {"hydra.run.dir": str(run_dir), "logger.wandb.mode": "offline",
                                  **dict(o.split("=", 1) for o in fast)})  # fmt: skip
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    run = run_record(run_dir)
    assert run.display_name == "adam-lr1e-3-s1"
    assert run.job_type == "sweep"
    tags = list(run.tags)
    assert len(tags) == len(set(tags))
    assert "data:digits" in tags and "optim:adam" in tags
    assert "digits" not in tags and "adam" not in tags  # the same label once, not twice
    assert run.run_group == "optim-lr-digits"


@pytest.mark.slow
def test_the_name_can_be_set(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    fast = [o for o in FAST if not o.startswith("logger.wandb")]
    out = subprocess.run(
        [sys.executable, "train.py", *fast, "data=digits", "model=mlp", "trainer.max_steps=2",
         "logger.wandb.mode=offline", "logger.wandb.name=my-baseline", f"hydra.run.dir={run_dir}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert run_record(run_dir).display_name == "my-baseline"
