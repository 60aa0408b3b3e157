"""Baselines as plain data: read back as report runs, a broken file one line, and the refusal to
set runs of another problem definition beside them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.report.baselines import (
    MARK,
    baseline_line,
    check_same_problems,
    latest_per_seed,
    read_baselines,
)
from harness.report.records import RunRecord


def run(seed: int, lr: float = 0.01, problem: str = "abc", opt: str = "adam") -> RunRecord:
    return RunRecord(
        name=f"r{seed}", task="digits/cnn", optimizer=opt, params={"optim.lr": lr, "seed": seed},
        lr=lr, seed=seed, status="finished", metrics={"best/val/acc": 0.5 + seed / 100},
        history=[{"step": 1, "val/acc": 0.4}, {"step": 3, "val/acc": 0.5}], monitor="val/acc",
        mode="max", problem=problem,
    )  # fmt: skip


def write(folder: Path, lines: list[dict]) -> Path:
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps({"suite": "tiny", "protocol": "p"}))
    (folder / "runs.jsonl").write_text("".join(json.dumps(b) + "\n" for b in lines))
    return folder


def test_a_stored_run_reads_back_as_the_run_it_was(tmp_path: Path) -> None:
    lines = [{**baseline_line(run(s), "seeds"), "problem": "cpu_digits"} for s in (0, 1)]
    runs, meta = read_baselines(write(tmp_path / "b", lines))
    assert meta["suite"] == "tiny"
    assert [(r.optimizer, r.seed, r.metrics["best/val/acc"], r.problem) for r in runs] == [
        ("adam" + MARK, 0, 0.5, "abc"),
        ("adam" + MARK, 1, 0.51, "abc"),
    ]
    assert runs[0].history == [{"step": 1, "val/acc": 0.4}, {"step": 3, "val/acc": 0.5}]


def test_a_broken_baselines_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a baselines folder"):
        read_baselines(tmp_path)
    folder = write(tmp_path / "b", [{"task": "digits/cnn"}])
    with pytest.raises(ConfigError, match="line 1: not a baseline run"):
        read_baselines(folder)


def test_runs_of_another_problem_definition_are_refused() -> None:
    check_same_problems([run(0)], [run(0, opt="sgd")], Path("b"))
    with pytest.raises(ConfigError) as e:
        check_same_problems([run(0, problem="xyz")], [run(0, opt="sgd")], Path("b"))
    assert "xyz" in str(e.value) and "abc" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError):  # a run that recorded no hash compares with nothing
        check_same_problems([run(0, problem=None)], [run(0, opt="sgd")], Path("b"))


def test_the_seeds_stage_replaces_the_grids_run_of_the_same_seed() -> None:
    grid, again = run(0), run(0)
    again.name = "rerun"
    kept = latest_per_seed([grid, run(0, lr=0.1), again, run(1)])
    assert sorted((r.name, r.lr) for r in kept) == [("r0", 0.1), ("r1", 0.01), ("rerun", 0.01)]


def test_baselines_are_stored_from_several_sweep_directories(tmp_path: Path, monkeypatch) -> None:
    """One sweep per problem (`experiment=cpu_digits` narrows the baselines' grid): all stored."""
    from benchmarks.baselines import main as store
    from harness.report import baselines
    from harness.report.records import SweepData

    def stages(source: Path) -> list:
        problem = Path(source).name
        runs = [run(0, problem=problem), run(1, problem=problem)]
        for r in runs:
            r.params["experiment"] = problem
        return [("grid", SweepData(problem, "best/val/acc", "maximize", runs, str(source)))]

    monkeypatch.setattr(baselines, "stages", stages)
    sources = [str(tmp_path / "p1"), str(tmp_path / "p2")]
    assert store([*sources, "--out", str(tmp_path / "bl"), "--suite", "tiny"]) == 0
    lines = [json.loads(x) for x in (tmp_path / "bl" / "runs.jsonl").read_text().splitlines()]
    assert [(b["problem"], b["seed"]) for b in lines] == [
        ("p1", 0),
        ("p1", 1),
        ("p2", 0),
        ("p2", 1),
    ]
    meta = json.loads((tmp_path / "bl" / "meta.json").read_text())
    assert all(s in meta["command"] for s in sources)
