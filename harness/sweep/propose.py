"""Proposals and early stopping from W&B's own search engine, the `sweeps` package (the code W&B's
server runs), fed with the runs the ledger knows.

grid and random proposals do not depend on results, so a sweep's whole plan is drawn once and
kept (resuming runs the same plan); bayes proposes one run at a time from the results so far.
"""

from __future__ import annotations

from typing import Any

from harness.errors import ConfigError
from harness.sweep.engine import engine, python_values
from harness.sweep.spec import SweepSpec

# Our run states -> the RunState the engine reasons with. A diverged run is a failed trial (the
# engine imputes its worst value); a run hyperband stopped has a real history, so it is finished.
ENGINE_STATE = {
    "running": "running",
    "finished": "finished",
    "stopped": "finished",
    "diverged": "failed",
    "failed": "failed",
    "interrupted": "pending",
}


def params_of(sweep_run: Any) -> dict[str, Any]:
    """{"optim.lr": 0.001, ...} from an engine run's config ({"optim.lr": {"value": ...}})."""
    return {k: python_values(v["value"]) for k, v in sweep_run.config.items()}


def engine_run(name: str, params: dict[str, Any], state: str, history: list[dict] = ()) -> Any:
    return engine().SweepRun(
        name=name,
        state=ENGINE_STATE[state],
        config={k: {"value": v} for k, v in params.items()},
        history=list(history),
    )


def plan(spec: SweepSpec, count: int | None) -> list[dict[str, Any]]:
    """Every run of a grid (capped by count or the file's run_cap) or `count` random runs."""
    cap = count if count is not None else spec.run_cap
    if spec.method == "random" and cap is None:
        raise ConfigError(
            f"{spec.path}: a random sweep never ends by itself; set run_cap in the file or --count"
        )
    n = cap if cap is not None else 1_000_000
    runs = engine().next_runs(spec.config, [], n=n)
    return [params_of(r) for r in runs if r is not None][:n]


def propose_bayes(spec: SweepSpec, known: list[Any]) -> dict[str, Any]:
    return params_of(engine().next_run(spec.config, known))


def to_stop(spec: SweepSpec, runs: list[Any]) -> set[str]:
    """Names of the running runs hyperband stops now (none without early_terminate)."""
    if not spec.config.get("early_terminate"):
        return set()
    return {r.name for r in engine().stop_runs(spec.config, runs)}
