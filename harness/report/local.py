"""A sweep run by sweep.py, read from its directory: sweep.json, the ledger, and each run's
results.json, metrics.csv and .hydra/ files. A Hydra multirun directory (`train.py -m`: one run
directory per job) or a single run directory reads the same way, each job's overrides its
parameters."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError
from harness.report.records import RunRecord, SweepData, status_from_losses, task_name
from harness.rundir.files import HYDRA_DIR, RESULTS_FILE, read_history, read_results, read_status
from harness.sweep.ledger import Ledger


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def read_run(run_dir: Path, entry: dict[str, Any]) -> RunRecord:
    try:
        results = read_results(run_dir)
    except (OSError, ValueError):
        results = {}
    config = _read_yaml(run_dir / HYDRA_DIR / "config.yaml")
    choices = results.get("choices") or (
        _read_yaml(run_dir / HYDRA_DIR / "hydra.yaml").get("hydra", {}).get("runtime", {})
    ).get("choices", {})
    if not choices:  # the run died before Hydra wrote its files: its own overrides say
        choices = dict(
            o.split("=", 1)
            for o in entry.get("overrides", [])
            if "=" in o and "." not in o.split("=", 1)[0]
        )
    params = entry.get("params", {})
    metrics = {k: v for k, v in results.items() if "/" in k and isinstance(v, (int, float))}
    history = read_history(run_dir)
    optimizer = str(choices.get("optim") or params.get("optim") or "?")
    if optimizer == "custom":  # the user's own class: named by it (optim=custom names none)
        optimizer = str((config.get("optim") or {}).get("_target_", "custom")).rsplit(".", 1)[-1]
    return RunRecord(
        name=entry["key"],
        task=task_name(choices, config),
        optimizer=optimizer,
        params=params,
        lr=(config.get("optim") or {}).get("lr", params.get("optim.lr")),
        seed=config.get("seed", params.get("seed")),
        status=status_from_losses(entry.get("state", "running"), history),
        metrics=metrics,
        history=history,
        runtime_s=results.get("runtime_s"),
        wall_s=entry.get("wall_s"),
        monitor=results.get("monitor"),
        mode=results.get("mode"),
        problem=(results.get("problem") or {}).get("hash"),
    )


def read_local(out: Path) -> SweepData:
    out = Path(out)
    try:
        asked = json.loads((out / "sweep.json").read_text())
    except (OSError, ValueError):
        return _read_runs(out)
    ledger = Ledger(out / "ledger.jsonl")
    runs = [
        read_run(out / e.get("run_dir", f"runs/{k}"), e)
        for k, e in ledger.entries.items()
        if "params" in e
    ]
    metric = asked["sweep"].get("metric") or {"name": "val/acc", "goal": "maximize"}
    extra = " ".join(shlex.quote(x) for x in asked.get("extra") or [])
    return SweepData(
        name=asked["name"],
        metric=metric["name"],
        goal=metric.get("goal", "minimize"),
        runs=runs,
        source=str(out),
        command=f"python sweep.py run {asked.get('file', 'SWEEP.yaml')} --out {out} {extra}".strip(),
    )


def _is_run(path: Path) -> bool:
    return (path / RESULTS_FILE).is_file() or (path / HYDRA_DIR / "overrides.yaml").is_file()


def _job_order(path: Path) -> tuple[int, str]:
    """Hydra's job number (OUT/0 ... OUT/10, compared as numbers), other names after."""
    return (int(path.name), "") if path.name.isdigit() else (1 << 62, path.name)


def _read_runs(out: Path) -> SweepData:
    """A Hydra multirun directory (OUT/0, OUT/1 ...) or one run directory."""
    dirs = (
        [out] if _is_run(out) else sorted((p for p in out.iterdir() if _is_run(p)), key=_job_order)
    )
    if not dirs:
        raise ConfigError(
            f"{out} holds no runs: give a sweep.py directory (sweep.json), a train.py -m "
            "directory, or a run directory (results.json)"
        )
    runs = []
    for d in dirs:
        overrides = _read_yaml(d / HYDRA_DIR / "overrides.yaml") or []
        params = {k: yaml.safe_load(v) for k, _, v in (o.partition("=") for o in overrides)}
        state = read_status(d) or "failed"  # no results.json: the job died before writing it
        runs.append(
            read_run(d, {"key": d.name, "params": params, "overrides": overrides, "state": state})
        )
    monitor = next((r for r in runs if r.monitor), None)
    multirun = _read_yaml(out / "multirun.yaml").get("hydra", {}).get("overrides", {}).get("task")
    return SweepData(
        name=out.name,
        metric=f"best/{monitor.monitor}" if monitor else "best/val/acc",
        goal="minimize" if monitor and monitor.mode == "min" else "maximize",
        runs=runs,
        source=str(out),
        command=f"python train.py -m {' '.join(shlex.quote(o) for o in multirun)}"
        if multirun
        else None,
    )
