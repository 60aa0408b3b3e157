"""Baselines as plain data, and the report of a user's runs beside them.

A baselines folder (e.g. baselines/cpu_v1/) holds
- meta.json: the suite, the protocol, the command that generated the runs, its git commit, the
  machine and the date;
- runs.jsonl: one run a line, {"problem", "hash", "task", "optimizer", "stage" (grid | seeds),
  "lr", "seed", "status", "monitor", "mode", "score" (best/<monitor>), "test" (the best
  checkpoint's test/<metric>, or null), "curve" ([[step, value of monitor], ...] at each
  validation)}.
Runs are compared only on a problem whose definition hash (harness.suite) is the baselines'.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.report.records import RunRecord, SweepData
from harness.rundir.files import series

RUNS_FILE = "runs.jsonl"
META_FILE = "meta.json"
MARK = " (baseline)"  # appended to a baseline's optimizer name in every table and plot


def _test_key(monitor: str) -> str:
    return "test/" + monitor.split("/", 1)[-1]


def _plain_number(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def baseline_line(r: RunRecord, stage: str) -> dict[str, Any]:
    """One run of a finished sweep as a runs.jsonl line."""
    monitor = r.monitor or "val/acc"
    return {
        "problem": r.params.get("experiment"),
        "hash": r.problem,
        "task": r.task,
        "optimizer": r.optimizer,
        "stage": stage,
        "lr": r.lr,
        "seed": r.seed,
        "status": r.status,
        "monitor": monitor,
        "mode": r.mode or "max",
        "score": _plain_number(r.metrics.get(f"best/{monitor}")),
        "test": _plain_number(r.metrics.get(_test_key(monitor))),
        "curve": [[s, _plain_number(v)] for s, v in series(r.history, monitor)],
    }


def stages(source: Path) -> list[tuple[str, SweepData]]:
    """A suite sweep directory and, when `sweep.py rerun` ran on it, its second stage (each
    optimizer's best setting on more seeds: SOURCE/rerun/*/)."""
    from harness.report.local import read_local

    found = [("grid", read_local(source))]
    for d in sorted(p.parent for p in (source / "rerun").glob("*/sweep.json")):
        found.append(("seeds", read_local(d)))
    return found


def latest_per_seed(runs: list[RunRecord]) -> list[RunRecord]:
    """One run per (task, optimizer, setting, seed): the last read (the seeds stage repeats the
    grid's seed-0 run of the best setting)."""
    kept: dict[tuple, RunRecord] = {}
    for r in runs:
        setting = tuple(sorted((k, repr(v)) for k, v in r.params.items() if k != "seed"))
        kept[(r.task, r.optimizer, setting, r.lr, r.seed)] = r
    return list(kept.values())


def read_baselines(folder: Path) -> tuple[list[RunRecord], dict[str, Any]]:
    folder = Path(folder)
    try:
        meta = json.loads((folder / META_FILE).read_text())
        lines = (folder / RUNS_FILE).read_text().splitlines()
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"--baselines {folder}: not a baselines folder ({META_FILE} and {RUNS_FILE}): {e}"
        ) from None
    runs = []
    for i, line in enumerate(x for x in lines if x.strip()):
        try:
            b = json.loads(line)
            monitor = b["monitor"]
            metrics = {f"best/{monitor}": b["score"], _test_key(monitor): b.get("test")}
            curve = [(s, v) for s, v in b.get("curve", [])]
            if curve:
                metrics[monitor] = curve[-1][1]
            runs.append(
                RunRecord(
                    name=f"baseline-{i}",
                    task=b["task"],
                    optimizer=b["optimizer"] + MARK,
                    params={"optim.lr": b["lr"], "seed": b["seed"]},
                    lr=b["lr"],
                    seed=b["seed"],
                    status=b["status"],
                    metrics={k: float(v) for k, v in metrics.items() if v is not None},
                    history=[{"step": s, monitor: math.nan if v is None else v} for s, v in curve],
                    monitor=monitor,
                    mode=b["mode"],
                    problem=b["hash"],
                )
            )
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(
                f"{folder / RUNS_FILE} line {i + 1}: not a baseline run ({e})"
            ) from None
    return latest_per_seed(runs), meta


def check_same_problems(mine: list[RunRecord], baselines: list[RunRecord], folder: Path) -> None:
    """Refuse runs of a task whose problem definition differs from the baselines' of that task."""
    theirs: dict[str, set[str | None]] = {}
    for r in baselines:
        theirs.setdefault(r.task, set()).add(r.problem)
    for task in sorted({r.task for r in mine} & set(theirs)):
        ours = {r.problem for r in mine if r.task == task}
        if ours != theirs[task] or len(ours) != 1:
            raise ConfigError(
                f"{task}: your runs train on problem definition {', '.join(sorted(map(str, ours)))}"
                f" but the baselines in {folder} on {', '.join(sorted(map(str, theirs[task])))}; "
                "only runs of the same definition (data, model, budget, validation, score: "
                "harness/suite.py) compare. Run the suite's problems unchanged, or regenerate "
                "the baselines with yours (docs/suite.md)"
            )


def protocol_note(meta: dict[str, Any], folder: Path, tasks: list[str]) -> str:
    return (
        f"Baselines from {folder} (suite {meta.get('suite', '?')}), marked '{MARK.strip()}': "
        f"{meta.get('protocol', 'protocol not recorded')} Generated by `{meta.get('command', '?')}`"
        f" at commit {meta.get('commit', '?')} on {meta.get('machine', '?')}, "
        f"{meta.get('created', '?')}. They are read, not re-run, and drawn only for tasks whose "
        f"problem definition hash equals theirs (here: {', '.join(tasks) or 'none'}). Your runs "
        "are compared by the same rules: the best setting by mean score over seeds, among "
        "settings none of whose seeds diverged, compared on the seeds they all share."
    )


def with_baselines(sources: list[Path], folder: Path) -> SweepData:
    """The user's suite sweeps (and their rerun stages) with the baselines of the tasks they ran."""
    from harness.report.records import merge

    for source in sources:
        if not Path(source).is_dir():
            raise ConfigError(f"--baselines compares sweep directories; {source} is not one")
    mine = merge([sweep for source in sources for _, sweep in stages(Path(source))])
    mine.runs = latest_per_seed(mine.runs)
    theirs, meta = read_baselines(folder)
    tasks = sorted({r.task for r in mine.runs} & {r.task for r in theirs})
    check_same_problems(mine.runs, theirs, Path(folder))
    mine.runs += [r for r in theirs if r.task in tasks]
    mine.notes = [protocol_note(meta, Path(folder), tasks), *mine.notes]
    return mine


def write_baselines(sources: list[Path], out: Path, suite: str, command: str) -> Path:
    """OUT/runs.jsonl and OUT/meta.json from finished suite sweeps (each with its rerun stage).
    For a shipped suite (harness.suite.SUITES), every run must be of its problems unchanged."""
    import datetime

    from harness.rundir.provenance import git_state
    from harness.suite import SUITES

    known = SUITES.get(suite)
    lines = []
    for source in map(Path, sources):
        stored = [baseline_line(r, stage) for stage, sweep in stages(source) for r in sweep.runs]
        if not stored:
            raise ConfigError(f"{source}: no runs to store")
        for b in stored:
            if b["hash"] is None:
                raise ConfigError(f"{source}: a run of {b['task']} recorded no problem hash")
            if known is not None and known.problems.get(b["problem"] or "") != b["hash"]:
                raise ConfigError(
                    f"{source}: {b['problem'] or b['task']} (definition {b['hash']}) is not a "
                    f"problem of suite {suite} as defined in harness/suite.py; store it under "
                    "another --suite name"
                )
        lines += stored
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    body = "".join(json.dumps(b, sort_keys=True) + "\n" for b in lines)
    meta = {
        "suite": suite,
        "protocol": PROTOCOL,
        "command": command,
        "commit": git_state()["commit"],
        "machine": machine(),
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "runs": len(lines),
    }
    (out / RUNS_FILE).write_text(body)
    (out / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    return out


PROTOCOL = (
    "DeepOBS's protocol (Schneider, Balles & Hennig, ICLR 2019): each optimizer with its config's "
    "defaults (conf/optim/NAME.yaml) but the learning rate, held constant (scheduler=constant), "
    "on a half-decade grid 1e-5 .. 1e2 with seed 0 (sweeps/suite_cpu_baselines.yaml); then the best "
    "setting of each (task, optimizer), by mean score (best/<task.monitor>) among settings that "
    "did not diverge, run again on seeds 0-9 (sweep.py rerun --seeds 10)."
)


def machine() -> str:
    """meta.json's machine: the CPU with its bfloat16 support and torch's kernels (muon's runs
    repeat exactly only on a like CPU), cores, OS, Python, torch."""
    import platform

    import torch

    from harness.rundir.provenance import hardware

    hw = hardware()
    return (
        f"{platform.machine()}, {hw['cpu']} ({hw['cpu_bfloat16']} bfloat16, torch CPU kernels "
        f"{hw['cpu_kernels']}), {hw['cpu_count']} cores, {platform.system()}, "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )
