"""The sweep report: its numbers (best setting, time to target, performance profile), the files
it writes, and reading an online sweep through a stand-in for W&B's public API."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.report import analysis
from harness.report.online import read_wandb
from harness.report.records import RunRecord, SweepData
from harness.report.sweep_page import parse_targets, write_report


def _run(task, opt, lr, seed, status="finished", accs=(0.5, 0.8, 0.9)) -> RunRecord:
    history = [
        {"step": 10 * (i + 1) - 1, "val/acc": a, "train/loss": 1 - a} for i, a in enumerate(accs)
    ]
    return RunRecord(
        name=f"{task}-{opt}-{lr}-{seed}", task=task, optimizer=opt,
        params={"optim": opt, "optim.lr": lr, "seed": seed}, lr=lr, seed=seed, status=status,
        metrics={} if status == "diverged" else {"val/acc": accs[-1], "test/acc": accs[-1] - 0.01},
        history=history,
    )  # fmt: skip


def _sweep(runs) -> SweepData:
    return SweepData(name="s", metric="val/acc", goal="maximize", runs=runs, source="test")


def test_best_setting_is_the_best_mean_among_settings_that_never_diverged() -> None:
    runs = [
        _run("a/m", "sgd", 0.1, 0, accs=(0.5, 0.9, 0.95)),
        _run("a/m", "sgd", 0.1, 1, status="diverged"),  # best seed, but the setting diverged once
        _run("a/m", "sgd", 0.01, 0, accs=(0.5, 0.8, 0.90)),
        _run("a/m", "sgd", 0.01, 1, accs=(0.5, 0.8, 0.92)),
    ]
    sweep = _sweep(runs)
    items = analysis.settings(sweep)["a/m"]["sgd"]
    assert [s.lr for s in items] == [0.01, 0.1]
    best = analysis.best_setting(items, "val/acc", True)
    assert best.lr == 0.01 and best.finals("val/acc") == [0.90, 0.92]
    assert analysis.mean_std(best.finals("val/acc")) == pytest.approx((0.91, 0.01414), abs=1e-4)


def test_a_rerun_setting_is_not_outranked_by_one_lucky_seed_of_the_grid() -> None:
    # DeepOBS: the grid's best (seed 0) is run on more seeds, and its mean is the result. A grid
    # neighbour's single seed above that mean is the winner's curse, not a better setting.
    runs = [_run("a/m", "adam", 0.001, s, accs=(0.5, 0.8, 0.84 - 0.005 * s)) for s in range(10)]
    runs.append(_run("a/m", "adam", 0.00316, 0, accs=(0.5, 0.8, 0.838)))
    items = analysis.settings(_sweep(runs))["a/m"]["adam"]
    best = analysis.best_setting(items, "val/acc", True)
    assert best.lr == 0.001 and len(best.finals("val/acc")) == 10


def test_a_setting_short_of_a_seed_is_compared_on_the_seeds_it_shares() -> None:
    # a 3-seed grid cut short (--count, a deleted run): lr 0.01 has seeds 0-1 only
    runs = [_run("a/m", "sgd", 0.0001, s, accs=(0.1, 0.1, 0.10)) for s in range(3)]
    runs += [_run("a/m", "sgd", 0.01, s, accs=(0.5, 0.9, 0.95)) for s in range(2)]
    items = analysis.settings(_sweep(runs))["a/m"]["sgd"]
    assert analysis.best_setting(items, "val/acc", True).lr == 0.01


def test_the_default_target_is_relative_to_the_best_setting_as_chosen() -> None:
    runs = [_run("a/m", "adam", 0.001, s, accs=(0.5, 0.8, 0.84 - 0.01 * s)) for s in range(10)]
    runs.append(_run("a/m", "adam", 0.00316, 0, accs=(0.5, 0.8, 0.838)))
    per_opt = analysis.settings(_sweep(runs))["a/m"]
    mean = statistics.fmean(0.84 - 0.01 * s for s in range(10))  # the re-run setting's
    assert analysis.default_target(per_opt, "val/acc", True) == pytest.approx(mean * 0.98)


def test_time_to_target_and_performance_profile() -> None:
    fast = _run("a/m", "adam", 0.001, 0, accs=(0.9, 0.95, 0.96))
    slow = _run("a/m", "sgd", 0.1, 0, accs=(0.5, 0.9, 0.96))
    never = _run("b/m", "sgd", 0.1, 0, accs=(0.1, 0.2, 0.3))
    assert analysis.steps_to_target(fast, "val/acc", 0.9, True) == 10  # first check, after 10 steps
    assert analysis.steps_to_target(slow, "val/acc", 0.9, True) == 20
    assert math.isinf(analysis.steps_to_target(never, "val/acc", 0.9, True))
    per_opt = analysis.settings(
        _sweep([fast, slow, _run("a/m", "sgd", 0.1, 1, accs=(0.5, 0.9, 0.94))])
    )["a/m"]
    assert analysis.default_target(per_opt, "val/acc", True) == pytest.approx(0.96 * 0.98)
    times = {"a/m": {"adam": 20.0, "sgd": 30.0}, "b/m": {"adam": 30.0, "sgd": math.inf}}
    rho = analysis.performance_profile(times, [1.0, 1.5, 100.0])
    assert rho == {"adam": [1.0, 1.0, 1.0], "sgd": [0.0, 0.5, 0.5]}


@pytest.mark.slow
def test_report_writes_markdown_html_and_plots(tmp_path: Path) -> None:
    runs = [_run(t, o, lr, s, accs=(0.5, 0.7 + lr, 0.8 + lr)) for t in ("a/m", "b/m") for o in ("sgd", "adam") for lr in (0.01, 0.1) for s in (0, 1)]  # fmt: skip
    runs.append(_run("a/m", "sgd", 1.0, 0, status="diverged"))
    runs[0].monitor, runs[0].mode = "val/acc", "max"  # as results.json records it
    path = write_report(_sweep(runs), tmp_path, targets={"b/m": 0.85})
    text = path.read_text()
    row = "| a/m | sgd | optim.lr=0.1 | best/val/acc | 0.9000 ± 0.0000 (n=2) | test/acc | 0.8900 ± 0.0000 (n=2) | 1 | 3 | 30 | – |"  # fmt: skip
    assert row in text
    # every setting, the diverged one included
    assert "| a/m | sgd | optim.lr=0.01 | 2 finished | best/val/acc | 0.8100 ± 0.0000 (n=2) | test/acc | 0.8000 ± 0.0000 (n=2) |" in text  # fmt: skip
    assert "| a/m | sgd | optim.lr=1.0 | 1 diverged | best/val/acc | – | test/acc | – |" in text
    assert "| b/m | val/acc | 0.85 |" in text  # the given target
    assert "AlgoPerf-style" in text and "How this differs from AlgoPerf's protocol" in text
    for name in ("sensitivity_a_m.png", "curves_b_m.png", "profile.png"):
        assert (tmp_path / name).stat().st_size > 1000
        assert f"({name})" in text and f"src='{name}'" in (tmp_path / "report.html").read_text()


def test_bad_target_is_a_clear_error() -> None:
    from harness.errors import ConfigError

    assert parse_targets(["digits/cnn=0.9"]) == {"digits/cnn": 0.9}
    with pytest.raises(ConfigError, match="TASK=NUMBER"):
        parse_targets(["digits/cnn=high"])


class FakeApi:
    """What read_wandb uses of wandb.Api: sweep(path) -> .config, .runs (id, config, summary,
    state, scan_history)."""

    def sweep(self, path: str):
        assert path == "me/proj/abc123"

        def run(i, lr, status, accs):
            rows = [{"_step": k, "trainer/global_step": 10 * k + 9, "val/acc": a, "epoch": k} for k, a in enumerate(accs)]  # fmt: skip
            return SimpleNamespace(
                id=f"r{i}", state="finished" if status != "crashed" else "crashed",
                config={"optim": "adam", "optim.lr": lr, "seed": 0, "data": {"_target_": "x"},
                        "meta": {"choices": {"data": "digits", "model": "cnn", "optim": "adam"}}},
                summary={"status": status, "val/acc": accs[-1], "runtime_s": 3.0} if status != "crashed" else {},
                scan_history=lambda keys=None, rows=rows: iter(rows),
            )  # fmt: skip

        return SimpleNamespace(
            config={"name": "online", "metric": {"name": "val/acc", "goal": "maximize"},
                    "parameters": {"optim": {"value": "adam"}, "optim.lr": {"values": [0.001, 0.1]}}},
            runs=[run(0, 0.001, "finished", [0.5, 0.9]), run(1, 0.1, "diverged", [0.2]), run(2, 0.1, "crashed", [])],
        )  # fmt: skip


def test_online_sweep_is_read_through_the_public_api(tmp_path: Path) -> None:
    sweep = read_wandb("me/proj/abc123", api=FakeApi())
    assert sweep.name == "online" and sweep.metric == "val/acc" and sweep.maximize
    first, diverged, crashed = sweep.runs
    assert (first.task, first.optimizer, first.lr, first.status) == (
        "digits/cnn",
        "adam",
        0.001,
        "finished",
    )
    assert first.history[-1]["step"] == 19 and first.metrics["val/acc"] == 0.9
    assert diverged.status == "diverged" and crashed.status == "failed"
    assert "| digits/cnn | adam | optim.lr=0.001 |" in write_report(sweep, tmp_path).read_text()


def test_a_finished_run_whose_loss_went_nan_counts_as_diverged() -> None:
    from harness.report.records import status_from_losses

    assert (
        status_from_losses("finished", [{"train/loss": 2.0}, {"train/loss": float("nan")}])
        == "diverged"
    )
    assert status_from_losses("finished", [{"train/loss": 2.0}, {"val/acc": 0.5}]) == "finished"
    assert status_from_losses("failed", [{"train/loss": float("inf")}]) == "failed"


def test_rerun_writes_each_best_setting_as_a_sweep_file_with_more_seeds(tmp_path: Path) -> None:
    import yaml

    from harness.sweep.rerun import best_sweep_files
    from harness.sweep.spec import load_spec

    runs = [_run("a/m", o, lr, 0, accs=(0.5, 0.9 - abs(lr - 0.01))) for o in ("sgd", "adam") for lr in (0.001, 0.01, 0.1)]  # fmt: skip
    base = {"name": "s", "program": "train.py", "method": "grid", "metric": {"name": "val/acc", "goal": "maximize"},
            "early_terminate": {"type": "hyperband", "min_iter": 2}, "parameters": {}}  # fmt: skip
    paths = best_sweep_files(_sweep(runs), base, 10, tmp_path)
    assert [p.name for p in paths] == ["a_m_adam.yaml", "a_m_sgd.yaml"]
    config = yaml.safe_load(paths[1].read_text())
    assert config["parameters"] == {"optim": {"value": "sgd"}, "optim.lr": {"value": 0.01}, "seed": {"values": list(range(10))}}  # fmt: skip
    assert "early_terminate" not in config
    assert load_spec(paths[1]).name == "s-best-a_m_sgd"  # a valid W&B sweep file


@pytest.mark.slow
def test_the_report_ranks_by_the_score_and_by_final_on_request(tmp_path: Path) -> None:
    import json

    # lr 0.1 peaks early (its checkpoint is tested), lr 0.01 ends higher
    runs = [_run("a/m", "sgd", 0.1, s, accs=(0.5, 0.95, 0.6)) for s in (0, 1)]
    runs += [_run("a/m", "sgd", 0.01, s, accs=(0.5, 0.7, 0.8)) for s in (0, 1)]
    for r in runs:
        r.metrics["test/acc"] = max(a["val/acc"] for a in r.history) - 0.01  # the best checkpoint's
    write_report(_sweep(runs), tmp_path / "best")
    best = json.loads((tmp_path / "best" / "report.json").read_text())
    assert best["by"] == "best"
    (row,) = best["tables"]["best_setting"]
    assert (row["best setting"], row["metric"]) == ("optim.lr=0.1", "best/val/acc")
    assert row["validation"] == {"mean": 0.95, "std": 0.0, "n": 2}
    assert row["test"]["mean"] == pytest.approx(0.94)  # the same checkpoint as the validation
    assert "A run's value is its score" in (tmp_path / "best" / "report.md").read_text()

    write_report(_sweep(runs), tmp_path / "final", by="final")
    final = json.loads((tmp_path / "final" / "report.json").read_text())
    (row,) = final["tables"]["best_setting"]
    assert (row["best setting"], row["metric"]) == ("optim.lr=0.01", "val/acc")
    assert row["validation"]["mean"] == pytest.approx(0.8)
    assert row["test"] is None  # only the best checkpoint is tested: no test of the final weights


def test_seconds_to_target_from_the_time_logged_with_the_score() -> None:
    run = _run("a/m", "sgd", 0.1, 0, accs=(0.5, 0.9, 0.95))
    run.history += [{"step": 10 * (i + 1) - 1, "best/val/acc": a, "perf/train_s": 2.5 * (i + 1)} for i, a in enumerate((0.5, 0.9, 0.95))]  # fmt: skip
    assert analysis.seconds_to_target(run, "val/acc", 0.9, True) == 5.0
    assert math.isinf(analysis.seconds_to_target(run, "val/acc", 0.99, True))
    assert math.isnan(analysis.seconds_to_target(_run("a/m", "sgd", 0.1, 1), "val/acc", 0.9, True))


# Two runs as a sweep directory holds them and as W&B's API returns them: the same tables.
RUNS = {
    "k1": ({"optim": "sgd", "optim.lr": 0.1, "seed": 0}, "finished", (0.5, 0.9, 0.6)),
    "k2": ({"optim": "sgd", "optim.lr": 0.01, "seed": 0}, "finished", (0.4, 0.7, 0.8)),
    "k3": ({"optim": "adam", "optim.lr": 0.01, "seed": 0}, "diverged", (0.3,)),
}


def _rows_and_results(params, status, accs):
    rows = []
    for i, a in enumerate(accs):
        step = 10 * i + 9
        rows += [{"epoch": i, "step": step, "train/loss": 1 - a},
                 {"epoch": i, "step": step, "val/acc": a, "val/loss": 2 - a}]  # fmt: skip
        best = max(accs[: i + 1])
        rows.append({"step": step, "best/val/acc": best, "best/val/loss": 2 - best, "perf/train_s": 1.5 * (i + 1)})  # fmt: skip
    results = {"status": status, "monitor": "val/acc", "mode": "max", "runtime_s": 4.0,
               "choices": {"data": "digits", "model": "cnn", "optim": params["optim"]},
               "val/acc": accs[-1], "best/val/acc": max(accs), "best/val/loss": 2 - max(accs)}  # fmt: skip
    if status == "finished":
        results["test/acc"] = max(accs) - 0.02
    return rows, results


SWEEP_CONFIG = {"name": "same", "method": "grid", "metric": {"name": "best/val/acc", "goal": "maximize"},
                "parameters": {"optim": {"values": ["sgd", "adam"]}, "optim.lr": {"values": [0.01, 0.1]},
                               "seed": {"value": 0}}}  # fmt: skip


def _local_sweep(out: Path) -> Path:
    import csv
    import json

    import yaml

    out.mkdir()
    (out / "sweep.json").write_text(json.dumps({"name": "same", "sweep": SWEEP_CONFIG}))
    ledger = []
    for key, (params, status, accs) in RUNS.items():
        rows, results = _rows_and_results(params, status, accs)
        run_dir = out / "runs" / key
        (run_dir / ".hydra").mkdir(parents=True)
        (run_dir / "results.json").write_text(json.dumps(results))
        config = {"optim": {"lr": params["optim.lr"]}, "seed": params["seed"]}
        (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
        columns = sorted({k for r in rows for k in r})
        with open(run_dir / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        ledger.append(json.dumps({"key": key, "params": params, "state": status, "run_dir": f"runs/{key}"}))  # fmt: skip
    (out / "ledger.jsonl").write_text("\n".join(ledger) + "\n")
    return out


class SameRunsApi:
    def sweep(self, path: str):
        runs = []
        for key, (params, status, accs) in RUNS.items():
            rows, results = _rows_and_results(params, status, accs)
            history = [{"_step": i, "trainer/global_step": r.pop("step"), **r} for i, r in enumerate(rows)]  # fmt: skip
            runs.append(SimpleNamespace(
                id=key, state="finished", config={**params, "meta": {"choices": results["choices"]}},
                summary=results, scan_history=lambda keys=None, rows=history: iter(rows)))  # fmt: skip
        return SimpleNamespace(config=SWEEP_CONFIG, runs=runs)


@pytest.mark.slow
def test_a_local_and_an_online_report_of_the_same_runs_give_the_same_tables(tmp_path: Path) -> None:
    import json

    from harness.report.local import read_local

    for by in ("best", "final"):
        write_report(read_local(_local_sweep(tmp_path / f"sweep_{by}")), tmp_path / f"local_{by}", by=by)  # fmt: skip
        write_report(read_wandb("me/proj/same", api=SameRunsApi()), tmp_path / f"online_{by}", by=by)  # fmt: skip
        local, online = (json.loads((tmp_path / f"{w}_{by}" / "report.json").read_text()) for w in ("local", "online"))  # fmt: skip
        assert local["tables"] == online["tables"]
        assert local["tables"]["best_setting"][0]["optimizer"] == "adam"  # diverged: none finished
    best = local["tables"]["best_setting"]  # by="final", the last loop's
    assert best[1]["best setting"] == "optim.lr=0.01" and best[1]["validation"]["mean"] == 0.8
    tables = json.loads((tmp_path / "local_best" / "report.json").read_text())["tables"]
    assert tables["best_setting"][1]["best setting"] == "optim.lr=0.1"
    assert tables["best_setting"][1]["validation"]["mean"] == 0.9
    assert tables["best_setting"][1]["test"]["mean"] == pytest.approx(0.88)
    (times,) = tables["time_to_target"]  # target 0.9 less 2%: lr 0.1 at its 2nd validation
    assert (times["sgd steps"], times["sgd seconds"]) == (20.0, 3.0)


def test_a_hydra_multirun_directory_is_read_as_a_sweep(tmp_path: Path) -> None:
    import json

    import yaml

    from harness.errors import ConfigError
    from harness.report.local import read_local

    for i, lr in enumerate((0.1, 0.01)):
        params = {"optim": "sgd", "optim.lr": lr, "seed": 0}
        _, results = _rows_and_results(params, "finished", (0.5, 0.9 - lr))
        (tmp_path / "m" / str(i) / ".hydra").mkdir(parents=True)
        (tmp_path / "m" / str(i) / "results.json").write_text(json.dumps(results))
        (tmp_path / "m" / str(i) / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"optim.lr={lr}"]))  # fmt: skip
    (tmp_path / "m" / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": {"task": ["optim.lr=0.1,0.01"]}}}))  # fmt: skip
    sweep = read_local(tmp_path / "m")
    assert (sweep.metric, sweep.maximize, len(sweep.runs)) == ("best/val/acc", True, 2)
    assert sweep.command == "python train.py -m optim.lr=0.1,0.01"
    assert sorted(r.params["optim.lr"] for r in sweep.runs) == [0.01, 0.1]
    for i in range(2, 11):  # jobs in Hydra's order, 2 before 10 (not as text: 0, 1, 10, 2...)
        (tmp_path / "m" / str(i) / ".hydra").mkdir(parents=True)
        (tmp_path / "m" / str(i) / ".hydra" / "overrides.yaml").write_text("[]")
    assert [r.name for r in read_local(tmp_path / "m").runs] == [str(i) for i in range(11)]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no runs"):
        read_local(tmp_path / "empty")


def test_one_run_shows_its_value_without_a_spread() -> None:
    from harness.report.sweep_page import Stat, _fmt

    assert _fmt(Stat.of([0.5])) == "0.5000 (n=1)"
    assert _fmt(Stat.of([0.5, 0.7])) == "0.6000 ± 0.1414 (n=2)"
