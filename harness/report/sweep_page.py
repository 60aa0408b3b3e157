"""Write the report: OUT/report.md and OUT/report.html (the same content) and the PNGs they show."""

from __future__ import annotations

import html
import math
import re
from collections import Counter
from pathlib import Path

from harness.errors import ConfigError
from harness.report import analysis, plots
from harness.report.records import SweepData

Block = tuple[str, object]  # ("h2", text) | ("p", text) | ("table", rows) | ("img", filename)


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


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return "∞" if math.isinf(x) else f"{x:.{digits}g}"


def _pm(values: list[float]) -> str:
    if not values:
        return "–"
    m, s = analysis.mean_std(values)
    return f"{m:.4f} ± {s:.4f} (n={len(values)})"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def report_sections(sweep: SweepData, out: Path, targets: dict[str, float]) -> list[Block]:
    grouped = analysis.settings(sweep)
    goals = {task: analysis.goal(sweep, task) for task in grouped}
    counts = ", ".join(f"{n} {s}" for s, n in sorted(Counter(r.status for r in sweep.runs).items()))
    judged = ", ".join(sorted({f"{m} ({'max' if up else 'min'})" for m, up in goals.values()}))
    doc: list[Block] = [
        ("h1", f"Sweep report: {sweep.name}"),
        ("p", f"Source: {sweep.source}. Runs: {len(sweep.runs)} ({counts}). Each task is judged "
              f"by its own validation metric (task.monitor): {judged}; a run's value is the last "
              "one it logged."),
    ]  # fmt: skip
    if sweep.command:
        doc.append(("code", sweep.command))

    rows = [["task", "optimizer", "best setting", "validation", "test",
             "settings with a diverged seed", "steps to target"]]  # fmt: skip
    times: dict[str, dict[str, float]] = {}
    best_of: dict[str, dict[str, analysis.Setting]] = {}
    target_of: dict[str, float | None] = {}
    for task, per_opt in grouped.items():
        metric, up = goals[task]
        test_metric = "test/" + metric.split("/", 1)[-1]
        target = target_of[task] = targets.get(task, analysis.default_target(per_opt, metric, up))
        for opt, items in per_opt.items():
            best = analysis.best_setting(items, metric, up)
            t = math.inf if target is None else analysis.time_to_target(items, metric, up, target)
            times.setdefault(task, {})[opt] = t
            if best is not None:
                best_of.setdefault(task, {})[opt] = best
            tests = [r.metrics[test_metric] for r in (best.runs if best else []) if r.status == "finished" and test_metric in r.metrics]  # fmt: skip
            rows.append([task, opt, best.setting if best else "none finished",
                         f"{metric} {_pm(best.finals(metric))}" if best else "–",
                         f"{test_metric} {_pm(tests)}" if tests else "–",
                         f"{sum(s.diverged > 0 for s in items)} of {len(items)}", _fmt(t)])  # fmt: skip
    doc += [("h2", "Best setting per task and optimizer"),
            ("p", "The setting with the best mean final validation metric over seeds, among "
                  "settings none of whose seeds diverged; mean ± sample std over seeds. Test "
                  "metrics are measured on each run's best checkpoint."),
            ("table", rows)]  # fmt: skip

    doc += [("h2", "Every setting"),
             ("p", "Mean ± sample std over the seeds that finished; the test metric is each run's "
                   "best checkpoint's."),
             ("table", _every_setting(grouped, goals))]  # fmt: skip

    doc.append(("h2", "Learning-rate sensitivity"))
    doc.append(("p", "Final validation metric against learning rate, one curve per optimizer "
                     "(mean ± std over seeds, finished runs only); an x on the lower edge marks a "
                     "learning rate at which a seed diverged (loss NaN or infinite)."))  # fmt: skip
    for task, per_opt in grouped.items():
        name = f"sensitivity_{_slug(task)}.png"
        plots.sensitivity(task, per_opt, goals[task][0], out / name)
        doc.append(("img", name))

    doc.append(("h2", "Training curves of the best setting per optimizer"))
    for task, best in best_of.items():
        name = f"curves_{_slug(task)}.png"
        plots.curves(task, best, goals[task][0], out / name)
        doc.append(("img", name))

    optimizers = sorted({o for per in times.values() for o in per})
    doc.append(("h2", "Performance profile"))
    doc.append(("p", "Time to target is counted in optimizer steps, not seconds: the runs share a "
                     "machine and run side by side, so seconds measure the neighbours as much as "
                     "the optimizer, and the optimizers compared here cost about the same per step. "
                     "Target per task: the best setting's mean final value of the task's metric "
                     "(over seeds, any optimizer), less 2% of it (plus 2% when lower is better), "
                     "unless given with --target TASK=VALUE. A run's time is the first validation step at which it "
                     "reaches the target; an optimizer's time on a task is its fastest setting's "
                     "median over seeds (never reached: ∞). The profile shows, for each optimizer, "
                     "the fraction of tasks on which its time is within a factor τ of the fastest "
                     "optimizer's time on that task, over the tasks some optimizer reached."))  # fmt: skip
    doc.append(("table", [["task", "metric", "target", *optimizers]]
                + [[task, goals[task][0], _fmt(target_of.get(task)), *(_fmt(per.get(o)) for o in optimizers)]
                   for task, per in times.items()]))  # fmt: skip
    ranked = {t: per for t, per in times.items() if any(math.isfinite(x) for x in per.values())}
    if ranked:  # a task no optimizer reached (or with no finished run yet) ranks no one
        taus = plots.taus_for(ranked)
        plots.profile(taus, analysis.performance_profile(ranked, taus), out / "profile.png")
        doc.append(("img", "profile.png"))
    return doc


def _every_setting(
    grouped: dict[str, dict[str, list[analysis.Setting]]], goals: dict[str, tuple[str, bool]]
) -> list[list[str]]:
    rows = [["task", "optimizer", "setting", "runs", "validation", "test"]]
    for task, per_opt in grouped.items():
        metric = goals[task][0]
        test_metric = "test/" + metric.split("/", 1)[-1]
        for opt, items in per_opt.items():
            for item in items:
                tests = [r.metrics[test_metric] for r in item.runs
                         if r.status == "finished" and test_metric in r.metrics]  # fmt: skip
                statuses = ", ".join(
                    f"{n} {st}" for st, n in sorted(Counter(r.status for r in item.runs).items())
                )
                rows.append([task, opt, item.setting or "–", statuses,
                             f"{metric} {_pm(item.finals(metric))}", f"{test_metric} {_pm(tests)}" if tests else "–"])  # fmt: skip
    return rows


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
            rows = [[str(c).replace("|", "\\|") for c in row] for row in value]  # type: ignore[union-attr]
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
            rows = value  # type: ignore[assignment]
            head = "".join(f"<th>{e(str(c))}</th>" for c in rows[0])
            body = "".join(
                "<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in rows[1:]
            )
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
    return "\n".join([*parts, "</body></html>"])


def write_report(sweep: SweepData, out: Path, targets: dict[str, float] | None = None) -> Path:
    if not sweep.runs:
        raise ConfigError(f"{sweep.source} has no runs to report on")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    doc = report_sections(sweep, out, targets or {})
    (out / "report.html").write_text(to_html(doc, sweep.name))
    path = out / "report.md"
    path.write_text(to_markdown(doc))
    return path
