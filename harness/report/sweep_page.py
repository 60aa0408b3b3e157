"""Write the report: OUT/report.md and OUT/report.html (the same content), OUT/report.json (every
table's rows as plain values, for code to read) and the PNGs they show.
(Over 250 lines: the report's sections and their three renderings, which must stay in step.)
"""

from __future__ import annotations

import html
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.report import analysis, plots
from harness.report.records import SweepData


@dataclass
class Stat:
    """mean ± sample std over n runs."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Stat | None:
        return cls(*analysis.mean_std(values), len(values)) if values else None


Cell = str | int | float | Stat | None
# ("h1" | "h2" | "p" | "code", text) | ("img", filename) | ("table", {"name", "columns", "rows"})
Block = tuple[str, Any]


def parse_targets(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        task, sep, value = item.rpartition("=")
        try:
            out[task] = float(value)
        except ValueError:
            sep = ""
        if not sep or not task:
            raise ConfigError(f"--target {item!r} must be TASK=NUMBER, e.g. digits/cnn=0.95")
    return out


def _fmt(x: Cell, digits: int = 4) -> str:
    if isinstance(x, Stat):  # one run has no spread to show (its sample std is undefined)
        return f"{x.mean:.4f} (n=1)" if x.n == 1 else f"{x.mean:.4f} ± {x.std:.4f} (n={x.n})"
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float):
        return "∞" if math.isinf(x) else f"{x:.{digits}g}"
    return str(x)


def _plain(x: Cell) -> Any:
    """A cell as JSON: a Stat as {mean, std, n}; ∞ (never reached) and NaN (none) as null."""
    if isinstance(x, Stat):
        return {"mean": x.mean, "std": x.std, "n": x.n}
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def _table(name: str, columns: list[str], rows: list[list[Cell]]) -> Block:
    return ("table", {"name": name, "columns": columns, "rows": rows})


def _test_key(metric: str) -> str:
    return "test/" + metric.split("/", 1)[-1]  # val/acc -> test/acc


def _tests(runs: list, metric: str, by: str) -> Stat | None:
    """The test metric of the checkpoint the validation column describes: the best one's, which
    is the only one tested (so none when ranking by the final validation)."""
    if by != "best":
        return None
    return Stat.of([r.metrics[_test_key(metric)] for r in runs
                    if r.status == "finished" and _test_key(metric) in r.metrics])  # fmt: skip


def report_sections(
    sweep: SweepData, out: Path, targets: dict[str, float], by: str = "best"
) -> list[Block]:
    grouped = analysis.settings(sweep)
    goals = {task: analysis.goal(sweep, task) for task in grouped}
    counts = ", ".join(f"{n} {s}" for s, n in sorted(Counter(r.status for r in sweep.runs).items()))
    judged = ", ".join(sorted({f"{m} ({'max' if up else 'min'})" for m, up in goals.values()}))
    value = (
        "its score: the metric at its best validation (best/<metric>), the checkpoint that is "
        "tested, so the test columns describe the same checkpoint (--by final: the last "
        "validation instead)"
        if by == "best"
        else "its last validation (--by final); only the best checkpoint is tested, so there "
        "are no test columns (the default, --by best, ranks by the best validation)"
    )
    doc: list[Block] = [
        ("h1", f"Sweep report: {sweep.name}"),
        ("p", f"Source: {sweep.source}. Runs: {len(sweep.runs)} ({counts}). Each task is judged "
              f"by its own validation metric (task.monitor): {judged}. A run's value is {value}."),
    ]  # fmt: skip
    if sweep.command:
        doc.append(("code", sweep.command))
    doc += [("p", note) for note in sweep.notes]

    rows: list[list[Cell]] = []
    steps: dict[str, dict[str, float]] = {}
    seconds: dict[str, dict[str, float]] = {}
    best_of: dict[str, dict[str, analysis.Setting]] = {}
    target_of: dict[str, float | None] = {}
    for task, per_opt in grouped.items():
        metric, up = goals[task]
        key = analysis.score_key(metric, by)
        target = target_of[task] = targets.get(task, analysis.default_target(per_opt, key, up))
        for opt, items in per_opt.items():
            best = analysis.best_setting(items, key, up)
            for clock, times in (("steps", steps), ("seconds", seconds)):
                t = math.inf if target is None else analysis.time_to_target(items, metric, up, target, clock)  # fmt: skip
                times.setdefault(task, {})[opt] = t
            if best is not None:
                best_of.setdefault(task, {})[opt] = best
            rows.append([task, opt, best.setting if best else "none finished", key,
                         Stat.of(best.finals(key)) if best else None, _test_key(metric),
                         _tests(best.runs, metric, by) if best else None,
                         sum(s.diverged > 0 for s in items), len(items),
                         steps[task][opt], seconds[task][opt]])  # fmt: skip
    doc += [("h2", "Best setting per task and optimizer"),
            ("p", f"The setting with the best mean {'score' if by == 'best' else 'final validation value'} "
                  "over seeds, among settings none of whose seeds diverged, compared on the seeds they "
                  "all share (a rerun's setting keeps its place); mean ± sample std over "
                  "seeds. Test metrics are measured on each run's best checkpoint."),
            _table("best_setting", ["task", "optimizer", "best setting", "metric", "validation",
                                    "test metric", "test", "settings with a diverged seed",
                                    "settings", "steps to target", "seconds to target"], rows)]  # fmt: skip

    doc += [("h2", "Every setting"),
            ("p", "Mean ± sample std over the seeds that finished; the test metric is each run's "
                  "best checkpoint's."),
            _every_setting(grouped, goals, by)]  # fmt: skip

    doc.append(("h2", "Learning-rate sensitivity"))
    doc.append(("p", f"{'Score' if by == 'best' else 'Final validation value'} against learning "
                     "rate, one curve per optimizer (mean ± std over seeds, finished runs only); an "
                     "x on the lower edge marks a learning rate at which a seed diverged (loss NaN "
                     "or infinite)."))  # fmt: skip
    for task, per_opt in grouped.items():
        name = f"sensitivity_{_slug(task)}.png"
        plots.sensitivity(task, per_opt, analysis.score_key(goals[task][0], by), out / name)
        doc.append(("img", name))

    doc.append(("h2", "Training curves of the best setting per optimizer"))
    for task, best in best_of.items():
        name = f"curves_{_slug(task)}.png"
        plots.curves(task, best, goals[task][0], out / name)
        doc.append(("img", name))

    optimizers = sorted({o for per in steps.values() for o in per})
    doc.append(("h2", "Time to target and performance profile (AlgoPerf-style)"))
    doc.append(("p", ALGOPERF))
    doc.append(_table("time_to_target", ["task", "metric", "target",
                      *(f"{o} {c}" for o in optimizers for c in ("steps", "seconds"))],
                      [[task, goals[task][0], target_of.get(task),
                        *(t.get(o, math.inf) for o in optimizers for t in (per, seconds[task]))]
                       for task, per in steps.items()]))  # fmt: skip
    ranked = {t: per for t, per in steps.items() if any(math.isfinite(x) for x in per.values())}
    if ranked:  # a task no optimizer reached (or with no finished run yet) ranks no one
        taus = plots.taus_for(ranked)
        plots.profile(taus, analysis.performance_profile(ranked, taus), out / "profile.png")
        doc.append(("img", "profile.png"))
    return doc


ALGOPERF = (
    "A run's time to target is the first validation at which its metric reaches the task's "
    "target, in optimizer steps and in seconds of training (perf/train_s: wall-clock from the "
    "start of training, validation included; '–' for runs logged before it was recorded). An "
    "optimizer's time on a task is its fastest setting's median over seeds (never reached: ∞). "
    "Target per task: the best setting's mean score (over seeds, any optimizer), less "
    f"{analysis.REL_TOLERANCE:.0%} of it (plus {analysis.REL_TOLERANCE:.0%} when lower is "
    "better), unless given with --target TASK=VALUE. The profile shows, for each optimizer, the "
    "fraction of tasks on which its time in steps is within a factor τ of the fastest "
    "optimizer's, over the tasks some optimizer reached. How this differs from AlgoPerf's "
    "protocol: AlgoPerf fixes each workload's validation and test targets in advance, from what "
    "well-tuned baseline algorithms reached within the workload's time budget, where here they "
    "come from the runs being compared; AlgoPerf's time is wall-clock on fixed, dedicated "
    "hardware with evaluation not counted, where runs here may share a machine (their seconds "
    "measure the neighbours too, which is why the profile counts steps) and include validation; "
    "AlgoPerf needs the test target too, takes the fastest of a fixed number of tuning trials "
    "per study and the median over studies, and scores a submission by the integral of its "
    "performance profile up to τ = 4 over all workloads (held-out variants included), where "
    "this report shows the profile and computes no integrated score."
)


def _every_setting(
    grouped: dict[str, dict[str, list[analysis.Setting]]],
    goals: dict[str, tuple[str, bool]],
    by: str,
) -> Block:
    rows: list[list[Cell]] = []
    for task, per_opt in grouped.items():
        metric = goals[task][0]
        key = analysis.score_key(metric, by)
        for opt, items in per_opt.items():
            for item in items:
                statuses = ", ".join(
                    f"{n} {st}" for st, n in sorted(Counter(r.status for r in item.runs).items())
                )
                rows.append([task, opt, item.setting or "–", statuses, key,
                             Stat.of(item.finals(key)), _test_key(metric),
                             _tests(item.runs, metric, by)])  # fmt: skip
    columns = [
        "task",
        "optimizer",
        "setting",
        "runs",
        "metric",
        "validation",
        "test metric",
        "test",
    ]
    return _table("every_setting", columns, rows)


def to_markdown(doc: list[Block]) -> str:
    lines: list[str] = []
    for kind, value in doc:
        if kind in ("h1", "h2"):
            lines += [("#" if kind == "h1" else "##") + f" {value}", ""]
        elif kind == "p":
            lines += [str(value), ""]
        elif kind == "code":
            lines += ["```bash", str(value), "```", ""]
        elif kind == "img":
            lines += [f"![{value}]({value})", ""]
        elif kind == "table":
            rows = [value["columns"], *([_fmt(c) for c in r] for r in value["rows"])]
            rows = [[str(c).replace("|", "\\|") for c in row] for row in rows]
            lines += ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
            lines += ["| " + " | ".join(r) + " |" for r in rows[1:]] + [""]
    return "\n".join(lines)


def to_html(doc: list[Block], title: str) -> str:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}"
             "img{max-width:100%}</style></head><body>"]  # fmt: skip
    for kind, value in doc:
        if kind in ("h1", "h2"):
            parts.append(f"<{kind}>{e(str(value))}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{e(str(value))}</p>")
        elif kind == "code":
            parts.append(f"<pre><code>{e(str(value))}</code></pre>")
        elif kind == "img":
            parts.append(f"<p><img src='{e(str(value))}' alt='{e(str(value))}'></p>")
        elif kind == "table":
            head = "".join(f"<th>{e(str(c))}</th>" for c in value["columns"])
            body = "".join(
                "<tr>" + "".join(f"<td>{e(_fmt(c))}</td>" for c in r) + "</tr>"
                for r in value["rows"]
            )
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
    return "\n".join([*parts, "</body></html>"])


def to_json(doc: list[Block], sweep: SweepData, by: str) -> dict[str, Any]:
    """Every table as a list of rows, each {column: plain value}."""
    tables = {
        v["name"]: [
            {c: _plain(x) for c, x in zip(v["columns"], row, strict=True)} for row in v["rows"]
        ]
        for kind, v in doc
        if kind == "table"
    }
    return {"name": sweep.name, "source": sweep.source, "by": by, "tables": tables}


def write_report(
    sweep: SweepData, out: Path, targets: dict[str, float] | None = None, by: str = "best"
) -> Path:
    if by not in analysis.BY:
        raise ConfigError(f"--by {by!r}: rank by one of {', '.join(analysis.BY)}")
    if not sweep.runs:
        raise ConfigError(f"{sweep.source} has no runs to report on")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    doc = report_sections(sweep, out, targets or {}, by)
    (out / "report.html").write_text(to_html(doc, sweep.name))
    (out / "report.json").write_text(json.dumps(to_json(doc, sweep, by), indent=1) + "\n")
    path = out / "report.md"
    path.write_text(to_markdown(doc))
    return path
