"""How runs end on the console (and in train.log): a run's closing block, and a multirun's table.

The closing block: status, the score (best/<monitor>, the checkpoint that is tested), that
checkpoint's test metrics, the run directory and the command that opens its report. A multirun
ends with one line per run (its score, and the overrides that differ between runs), read from
the runs' results.json: the jobs may have run in other processes (joblib, submitit).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from harness.numbers import is_number
from harness.rundir.files import HYDRA_DIR, RESULTS_FILE

log = logging.getLogger(__name__)
MAX_ROWS = 20  # one screen; the best ones are kept when there are more


def score(results: dict[str, Any]) -> float | None:
    """The run's score, best/<monitor>, or None when it has none (no validation ran)."""
    value = results.get(f"best/{results.get('monitor')}")
    return float(value) if is_number(value) else None


def objective(results: dict[str, Any], mode: str) -> float:
    """What a Hydra sweeper optimises: the score of a finished run, else the worst value."""
    value = score(results) if results.get("status") == "finished" else None
    return value if value is not None else worst(mode)


def worst(mode: str) -> float:
    return -math.inf if mode == "max" else math.inf


def _num(value: Any) -> str:
    return f"{value:.4g}" if is_number(value) else "-"


def closing_lines(results: dict[str, Any], run_dir: Path) -> list[str]:
    status, monitor = results.get("status", "?"), results.get("monitor")
    best = results.get("best") or {}
    where = f" (step {best['step']}, epoch {best['epoch']})" if "step" in best else ""
    value = score(results)
    scored = f"best/{monitor} {_num(value)}{where}" if value is not None else "no validation"
    lines = [f"run {status}: {scored}"]
    tests = {k: v for k, v in results.items() if k.startswith("test/")}
    if tests:
        lines.append(
            "test (that checkpoint): " + "  ".join(f"{k} {_num(v)}" for k, v in tests.items())
        )
    lines += [f"run directory: {run_dir}", f"report: python -m harness.report {run_dir}"]
    if results.get("wandb_mode") == "offline":
        from harness.tracking.wandb import sync_hint

        lines.append(f"W&B (offline), upload with: {sync_hint(run_dir)}")
    return lines


def say_closing(results: dict[str, Any], run_dir: Path) -> None:
    """The closing block, through logging: the console and RUN_DIR/train.log."""
    for line in closing_lines(results, run_dir):
        log.info(line)


# Jobs of this process refused for a bad config (nothing written): (run dir, error, overrides).
BAD_JOBS: list[tuple[str, str, list[str]]] = []


class MultirunWatch(Callback):
    """Hydra callback (conf/config.yaml, hydra.callbacks): remembers where and when the multirun
    started, so that train.py can print its table and exit with its status afterwards."""

    started: tuple[Path, float] | None = None

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        MultirunWatch.started = (Path(str(config.hydra.sweep.dir)).absolute(), time.time())


def n_runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def sweep_runs(sweep_dir: Path, since: float) -> list[tuple[Path, dict[str, Any]]]:
    """(run dir, results) of every run under sweep_dir whose results.json is from this multirun."""
    found = []
    for path in sorted(sweep_dir.rglob(RESULTS_FILE)):
        try:
            if path.stat().st_mtime >= since - 1:
                found.append((path.parent, json.loads(path.read_text())))
        except (OSError, ValueError):
            continue
    return sorted(found, key=lambda r: _job_order(r[0]))


def _job_order(run_dir: Path) -> tuple[int, str]:
    return (int(run_dir.name), "") if run_dir.name.isdigit() else (1 << 30, str(run_dir))


def _overrides(run_dir: Path) -> list[str]:
    import yaml

    try:
        found = yaml.safe_load((run_dir / HYDRA_DIR / "overrides.yaml").read_text()) or []
    except (OSError, yaml.YAMLError):
        return []
    return [o for o in found if not str(o).startswith("hydra.")]  # where it ran, not what


def multirun_table(
    runs: list[tuple[Path, dict[str, Any]]],
    bad: list[tuple[str, str, list[str]]],
    title: str = "multirun",
    report_hint: bool = True,
) -> list[str]:
    """One line per run: status, score, test metric, the overrides that differ between runs."""
    overrides = {d: _overrides(d) for d, _ in runs}
    every = [set(o) for o in overrides.values()] + [set(o) for _, _, o in bad]
    common = set.intersection(*every) if every else set()
    scored = [(d, r) for d, r in runs if r.get("status") == "finished" and score(r) is not None]
    best = None
    if scored:
        mode = scored[0][1].get("mode", "max")
        best = (max if mode == "max" else min)(scored, key=lambda dr: score(dr[1]))[0]
    shown = runs
    if len(runs) > MAX_ROWS:  # the best ones, in job order
        keep = sorted(
            scored, key=lambda dr: score(dr[1]), reverse=scored[0][1].get("mode") == "max"
        )
        kept = {d for d, _ in keep[:MAX_ROWS]}
        shown = [dr for dr in runs if dr[0] in kept]
    monitor = runs[0][1].get("monitor", "?") if runs else "?"
    test_key = "test/" + monitor.split("/", 1)[-1]  # val/acc -> test/acc
    counts: dict[str, int] = {}
    for _, r in runs:
        counts[r.get("status", "?")] = counts.get(r.get("status", "?"), 0) + 1
    if bad:
        counts["bad config"] = len(bad)
    tally = ", ".join(f"{n} {s}" for s, n in counts.items())
    lines = [f"{title}: {n_runs(len(runs) + len(bad))} ({tally}); score best/{monitor}, * the best"]
    name = max([6, *(len(d.name) for d, _ in shown), *(len(Path(d).name) for d, _, _ in bad)])
    lines.append(
        f"  {'run':<{name}} {'status':<11} {'best/' + monitor:>14} {test_key:>9}  overrides"
    )
    for d, r in shown:
        mark = "*" if d == best else " "
        diff = " ".join(o for o in overrides[d] if o not in common)
        test = r.get(test_key)
        lines.append(f"{mark} {d.name:<{name}} {r.get('status', '?'):<11} {_num(score(r)):>14} "
                     f"{_num(test):>9}  {diff}")  # fmt: skip
    if len(runs) > len(shown):
        lines.append(f"  ... {len(runs) - len(shown)} more (not among the {MAX_ROWS} best)")
    for d, e, o in bad:
        diff = " ".join(x for x in o if x not in common)
        lines.append(f"  {Path(d).name:<{name}} {'bad config':<11} {'-':>14} {'-':>9}  {diff}: {e}")
    if best is not None:
        lines.append(f"best run: {best}  (report: python -m harness.report {best})")
    if runs and report_hint:
        lines.append(f"all runs: python sweep.py report {runs[0][0].parent}")
    return lines


def end_multirun() -> int:
    """After a multirun: print its table; 0 when every job finished, else 1."""
    if MultirunWatch.started is None:
        return 0
    sweep_dir, since = MultirunWatch.started
    runs = sweep_runs(sweep_dir, since)
    if not runs and not BAD_JOBS:  # nothing ran (Hydra could not compose the jobs: it said why)
        return 1
    for line in multirun_table(runs, BAD_JOBS):
        print(line)
    return 0 if runs and not BAD_JOBS and all(r.get("status") == "finished" for _, r in runs) else 1
