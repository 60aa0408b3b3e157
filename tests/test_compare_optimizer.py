"""The README's "Compare your optimizer" flow with a tiny budget: a class in a test file through
the suite (one problem, a few steps) and DeepOBS's second stage, then a report beside baselines
generated here the way the shipped ones are, and the refusal of a different problem definition."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.baselines import main as store_baselines
from harness.config.command import check_overrides
from harness.suite import problem_hash
from harness.sweep.main import main as sweep

pytestmark = pytest.mark.slow  # starts train.py processes

TINY = ["experiment=cpu_digits", "optim.lr=0.01,0.1", "trainer.max_steps=4",
        "trainer.val_check_interval=2", "trainer.limit_test_batches=2"]  # fmt: skip


def test_your_optimizer_through_the_suite_against_baselines(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    base, mine = tmp_path / "base", tmp_path / "mine"
    # the baselines: the shipped protocol (grid, then the best setting on more seeds), tiny
    run = ["--jobs", "2", "--no-report"]
    assert sweep(["run", "sweeps/suite_cpu_baselines.yaml", "--out", str(base), *run, "optim=adam", *TINY]) == 0  # fmt: skip
    assert sweep(["rerun", str(base), "--seeds", "2", "--jobs", "2"]) == 0
    assert store_baselines([str(base), "--out", str(tmp_path / "bl"), "--suite", "tiny"]) == 0
    lines = [json.loads(x) for x in (tmp_path / "bl" / "runs.jsonl").read_text().splitlines()]
    assert {(b["stage"], b["seed"]) for b in lines} == {("grid", 0), ("seeds", 0), ("seeds", 1)}
    assert all(b["curve"] and b["score"] is not None and b["hash"] for b in lines)
    meta = json.loads((tmp_path / "bl" / "meta.json").read_text())
    assert "bfloat16, torch CPU kernels" in meta["machine"]  # muon repeats only on a like CPU

    # yours: a class in a test file, the same grid and seeds
    target = "optim._target_=tests.optimizers.SignMomentum"
    assert sweep(["run", "sweeps/suite_cpu.yaml", "--out", str(mine), *run, target, *TINY]) == 0
    assert sweep(["rerun", str(mine), "--seeds", "2", "--jobs", "2"]) == 0
    results = json.loads(next((mine / "runs").glob("*/results.json")).read_text())
    digest = problem_hash(check_overrides([*TINY[:1], *TINY[2:], "optim=custom", target]))
    assert results["problem"] == {"name": "cpu_digits", "hash": digest, "suite": None}

    out = tmp_path / "report"
    assert sweep(["report", str(mine), "--baselines", str(tmp_path / "bl"), "--out", str(out)]) == 0
    best = json.loads((out / "report.json").read_text())["tables"]["best_setting"]
    rows = {r["optimizer"]: r for r in best if r["task"] == "digits/cnn"}
    assert set(rows) == {"SignMomentum", "adam (baseline)"}
    assert all(r["validation"]["n"] == 2 for r in rows.values())  # the seeds stage, seed 0 once
    text = (out / "report.md").read_text()
    assert "DeepOBS's protocol" in text and "(baseline)" in text

    # baselines of another definition of the problem: one line, exit 2, nothing written
    other = tmp_path / "other"
    other.mkdir()
    (other / "meta.json").write_text((tmp_path / "bl" / "meta.json").read_text())
    (other / "runs.jsonl").write_text(
        (tmp_path / "bl" / "runs.jsonl").read_text().replace(digest, "0123456789")
    )
    capsys.readouterr()
    code = sweep(["report", str(mine), "--baselines", str(other), "--out", str(tmp_path / "no")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "0123456789" in err and digest in err
    assert not (tmp_path / "no").exists()
