"""A sweep's runs as plain records, whatever they were read from (run directories or W&B)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# Parameters that say which task and optimizer a run belongs to, or which repeat it is; the
# rest of a run's parameters (the learning rate ...) are its setting.
NOT_SETTING = ("seed", "data", "model", "optim", "task", "experiment")


@dataclass
class RunRecord:
    name: str  # the run key (offline) or W&B run id
    task: str  # "data/model", e.g. "digits/cnn": a DeepOBS-style test problem
    optimizer: str  # the optim option, e.g. "adamw"
    params: dict[str, Any]  # the sweep parameters of this run
    lr: float | None
    seed: int | None
    status: str  # finished | diverged | stopped | failed | interrupted | running
    # the score (best/val/acc ...: at the best validation), the last values (val/acc ...) and the
    # best checkpoint's test metrics (test/acc ...)
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)  # metrics.csv rows
    runtime_s: float | None = None  # inside train(), from results.json
    wall_s: float | None = None  # the whole process, as the runner saw it
    monitor: str | None = None  # the task's metric (task.monitor), e.g. val/acc
    mode: str | None = None  # max | min
    problem: str | None = None  # definition hash (results.json "problem"; harness.suite)

    def fill_best(self, metric: str, maximize: bool) -> None:
        """A run logged before the score existed has no best/ metrics: take them from its history,
        the validation row with the best value of `metric` (the first of equal values, as the
        run's checkpoint kept it)."""
        if f"best/{metric}" in self.metrics:
            return
        best: dict[str, float] | None = None
        for row in self.history:
            v = row.get(metric, math.nan)
            if math.isfinite(v) and (
                best is None or (v > best[metric] if maximize else v < best[metric])
            ):
                best = row
        for k, v in (best or {}).items():
            if k.startswith("val/"):
                self.metrics[f"best/{k}"] = v

    def setting(self, keys: set[str]) -> str:
        """This run's values of `keys` but task, optimizer and seed, e.g. "optim.lr=0.001"."""
        kept = {k: v for k, v in sorted(self.params.items()) if k in keys and k not in NOT_SETTING}
        if not kept and self.lr is not None:
            kept = {"optim.lr": self.lr}
        return " ".join(f"{k}={v}" for k, v in kept.items()) or "default"


@dataclass
class SweepData:
    name: str
    metric: str  # the sweep's metric.name, e.g. "best/val/acc"
    goal: str  # maximize | minimize
    runs: list[RunRecord]
    source: str  # where the runs were read from
    command: str | None = None  # how the sweep was run, when known
    notes: list[str] = field(default_factory=list)  # paragraphs the report states first

    @property
    def maximize(self) -> bool:
        return self.goal == "maximize"


def status_from_losses(status: str, history: list[dict[str, float]]) -> str:
    """A run that says it finished but whose last training loss is NaN or infinite diverged (a
    harness without divergence detection finishes such runs)."""
    losses = [r["train/loss"] for r in history if "train/loss" in r]
    if status == "finished" and losses and not math.isfinite(losses[-1]):
        return "diverged"
    return status


def task_name(choices: dict[str, Any], config: dict[str, Any]) -> str:
    data = choices.get("data") or str((config.get("data") or {}).get("_target_", "?"))
    model = choices.get("model") or str((config.get("model") or {}).get("_target_", "?"))
    return f"{data}/{model}"


def merge(sweeps: list[SweepData]) -> SweepData:
    """Several sweeps as one report (e.g. one grid per task, compared across tasks)."""
    if len(sweeps) == 1:
        return sweeps[0]
    metrics = {(s.metric, s.goal) for s in sweeps}
    if len(metrics) > 1:
        from harness.errors import ConfigError

        raise ConfigError(f"these sweeps rank by different metrics: {sorted(metrics)}")
    return SweepData(
        name=" + ".join(s.name for s in sweeps),
        metric=sweeps[0].metric,
        goal=sweeps[0].goal,
        runs=[r for s in sweeps for r in s.runs],
        source=", ".join(s.source for s in sweeps),
        command="\n".join(s.command for s in sweeps if s.command) or None,
        notes=[n for s in sweeps for n in s.notes],
    )
