"""The numbers of the report, from plain run records.

- a run's score: its monitored metric at its best validation, best/<monitor> (the checkpoint that
  is tested); `by="final"` uses the last validation's value instead;
- best setting per (task, optimizer): the setting (learning rate ...) with the best mean score over
  its seeds, among settings none of whose seeds diverged, compared on the seeds they all share
  (after `sweep.py rerun`, the re-run setting keeps its place: DeepOBS picks the same way);
- time to target (AlgoPerf-style): the first validation at which a run's metric reaches the task's
  target, in optimizer steps and in wall-clock seconds of training (perf/train_s, validation
  included). An optimizer's time on a task is its fastest setting's median over seeds (AlgoPerf:
  the fastest tuning trial, the median over studies); a run that never gets there takes forever;
- performance profile: for each optimizer, the fraction of tasks on which its time is within a
  factor tau of the fastest optimizer's on that task (Dolan & Moré, 2002; AlgoPerf).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass

from harness.report.records import RunRecord, SweepData
from harness.rundir.files import TIME, finite, series

REL_TOLERANCE = 0.02  # default target: within 2% of the best setting's mean score
BY = ("best", "final")  # what a run's validation value is: its score, or its last validation


def score_key(metric: str, by: str) -> str:
    """The results.json / summary key of a run's value of `metric` (val/acc -> best/val/acc)."""
    return f"best/{metric}" if by == "best" else metric


@dataclass
class Setting:
    task: str
    optimizer: str
    setting: str
    lr: float | None
    runs: list[RunRecord]

    def by_seed(self, metric: str) -> list[tuple[int | None, float]]:
        """(seed, value) of each finished run with a finite value."""
        return [
            (r.seed, r.metrics[metric])
            for r in self.runs
            if r.status == "finished" and finite(r.metrics.get(metric))
        ]

    def finals(self, metric: str) -> list[float]:
        return [v for _, v in self.by_seed(metric)]

    @property
    def diverged(self) -> int:
        return sum(r.status == "diverged" for r in self.runs)

    @property
    def clean(self) -> bool:
        """Every seed ran its whole budget."""
        return all(r.status == "finished" for r in self.runs)


def mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def goal(sweep: SweepData, task: str) -> tuple[str, bool]:
    """(metric, maximize) a task is judged by: its own task.monitor, as its runs recorded it
    (val/acc for a classifier, val/loss for a language model), else the sweep's metric."""
    for r in sweep.runs:
        if r.task == task and r.monitor:
            return r.monitor, r.mode != "min"
    return sweep.metric.removeprefix("best/"), sweep.maximize


def settings(sweep: SweepData) -> dict[str, dict[str, list[Setting]]]:
    """task -> optimizer -> its settings, sorted by learning rate. A setting is named by the
    parameters that vary among the task's runs, less optimizer and seed. Runs logged before the
    score existed get it from their history (RunRecord.fill_best)."""
    by_task: dict[str, list[RunRecord]] = defaultdict(list)
    for r in sweep.runs:
        by_task[r.task].append(r)
    groups: dict[tuple[str, str, str], list[RunRecord]] = defaultdict(list)
    for task, runs in by_task.items():
        for r in runs:
            r.fill_best(*goal(sweep, task))
        keys = {k for r in runs for k in r.params}
        varying = {k for k in keys if len({repr(r.params.get(k)) for r in runs}) > 1}
        for r in runs:
            groups[(task, r.optimizer, r.setting(varying))].append(r)
    out: dict[str, dict[str, list[Setting]]] = defaultdict(lambda: defaultdict(list))
    for (task, opt, label), runs in sorted(groups.items()):
        out[task][opt].append(
            Setting(task, opt, label, runs[0].lr, sorted(runs, key=lambda r: r.seed or 0))
        )
    for opts in out.values():
        for items in opts.values():
            items.sort(key=lambda s: (s.lr is None, s.lr or 0.0, s.setting))
    return out


def best_setting(items: list[Setting], metric: str, maximize: bool) -> Setting | None:
    """Settings none of whose seeds diverged or failed first; among them the best mean over the
    seeds they all finished (paired: after `sweep.py rerun`, a grid neighbour's one lucky seed
    does not outrank the re-run setting, which won on seed 0), then the most seeds. The chosen
    setting is then described by all its seeds."""
    scored = [s for s in items if s.finals(metric)]
    pool = [s for s in scored if s.clean] or scored
    if not pool:
        return None
    shared = set.intersection(*({seed for seed, _ in s.by_seed(metric)} for s in pool))
    sign = 1 if maximize else -1

    def rank(s: Setting) -> tuple[float, int]:
        paired = [v for seed, v in s.by_seed(metric) if seed in shared] or s.finals(metric)
        return sign * statistics.fmean(paired), len(s.finals(metric))

    return max(pool, key=rank)


def default_target(per_opt: dict[str, list[Setting]], metric: str, maximize: bool) -> float | None:
    """The best setting's mean value of `metric` (a score key; over seeds; the best optimizer's),
    relaxed by REL_TOLERANCE: AlgoPerf sets a target a well-tuned baseline reaches, and seeds
    scatter."""
    chosen = [best_setting(items, metric, maximize) for items in per_opt.values()]
    means = [statistics.fmean(s.finals(metric)) for s in chosen if s is not None]
    if not means:
        return None
    best = max(means) if maximize else min(means)
    return best - REL_TOLERANCE * abs(best) if maximize else best + REL_TOLERANCE * abs(best)


def steps_to_target(run: RunRecord, metric: str, target: float, maximize: bool) -> float:
    for step, value in series(run.history, metric):
        if finite(value) and (value >= target if maximize else value <= target):
            return float(step + 1)  # optimizer steps taken: a validation after step k logs step k-1
    return math.inf


def seconds_to_target(run: RunRecord, metric: str, target: float, maximize: bool) -> float:
    """Training seconds (perf/train_s) at the first validation whose score reaches the target;
    NaN for a run that did not log the time (logged before the score existed)."""
    timed = [r for r in run.history if TIME in r and f"best/{metric}" in r]
    if not timed:
        return math.nan
    for row in timed:
        value = row[f"best/{metric}"]
        if finite(value) and (value >= target if maximize else value <= target):
            return row[TIME]
    return math.inf


def time_to_target(
    items: list[Setting], metric: str, maximize: bool, target: float, clock: str = "steps"
) -> float:
    """The fastest setting's median (over seeds) time to the target, in optimizer steps or
    seconds; inf if none gets there, NaN if no run timed it."""
    runs_time = steps_to_target if clock == "steps" else seconds_to_target
    medians = []
    for s in items:
        times = [runs_time(r, metric, target, maximize) for r in s.runs if r.status != "failed"]
        times = [t for t in times if not math.isnan(t)]
        if times:
            medians.append(statistics.median(times))
    return min(medians) if medians else (math.nan if clock == "seconds" else math.inf)


def performance_profile(
    times: dict[str, dict[str, float]], taus: list[float]
) -> dict[str, list[float]]:
    """times: task -> optimizer -> time. Returns optimizer -> rho(tau) for each tau."""
    optimizers = sorted({o for per in times.values() for o in per})
    profile = {o: [] for o in optimizers}
    for tau in taus:
        for o in optimizers:
            within = 0
            for per in times.values():
                fastest = min(per.values())
                t = per.get(o, math.inf)
                within += math.isfinite(t) and t <= tau * fastest
            profile[o].append(within / len(times) if times else 0.0)
    return profile
