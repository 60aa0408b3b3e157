"""A sweep run by sweep.py, read from its directory: sweep.json, the ledger, and each run's
results.json, metrics.csv and .hydra/ files."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError
from harness.report.records import RunRecord, SweepData, status_from_losses, task_name
from harness.rundir.layout import HYDRA_DIR
from harness.rundir.metrics import read_history
from harness.rundir.results import read_results
from harness.sweep.ledger import Ledger


def _read_yaml(path: Path) -> dict[str, Any]:
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
    return RunRecord(
        name=entry["key"],
        task=task_name(choices, config),
        optimizer=str(choices.get("optim") or params.get("optim") or "?"),
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
    )


def read_local(out: Path) -> SweepData:
    out = Path(out)
    try:
        asked = json.loads((out / "sweep.json").read_text())
    except (OSError, ValueError):
        raise ConfigError(
            f"{out} is not a sweep directory (no sweep.json): run sweep.py run"
        ) from None
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
