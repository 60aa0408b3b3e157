"""Step 2 of DeepOBS's protocol: the best setting of each (task, optimizer) of a finished sweep,
run again with more seeds. Each becomes an ordinary W&B sweep file (its parameters fixed at the
best setting, `seed` a list), so the re-run goes online as well as offline."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError
from harness.report import analysis
from harness.report.records import SweepData


def best_sweep_files(sweep: SweepData, base: dict[str, Any], seeds: int, out: Path) -> list[Path]:
    """Write OUT/<task>_<optimizer>.yaml for each best setting; return the paths."""
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for task, per_opt in analysis.settings(sweep).items():
        for opt, items in per_opt.items():
            metric, up = analysis.goal(sweep, task)
            best = analysis.best_setting(items, analysis.score_key(metric, "best"), up)
            if best is None:
                continue
            params = {k: {"value": v} for k, v in best.runs[0].params.items() if k != "seed"}
            params["seed"] = {"values": list(range(seeds))}
            slug = re.sub(r"[^A-Za-z0-9]+", "_", f"{task}_{opt}").strip("_")
            config = {**base, "name": f"{base.get('name', sweep.name)}-best-{slug}", "method": "grid", "parameters": params}  # fmt: skip
            config.pop("early_terminate", None)
            config.pop("run_cap", None)
            path = out / f"{slug}.yaml"
            path.write_text(
                f"# The best setting of {opt} on {task} in {sweep.source} ({best.setting}), "
                f"{seeds} seeds.\n" + yaml.safe_dump(config, sort_keys=False)
            )
            paths.append(path)
    if not paths:
        raise ConfigError(f"{sweep.source}: no setting finished, nothing to run again")
    return paths
