"""One run on one self-contained HTML page: its results, its curves (from metrics.csv) and its
latest pictures (from RUN_DIR/pictures/), with no W&B and no server.

    python -m harness.report RUN_DIR [RUN_DIR ...]     # writes RUN_DIR/report.html

The pieces take plain values (a results dict, {metric: [(step, value)]}, picture files), so a
sweep report can put several runs' sections on one page (`run_section`, `page`).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.rundir.files import METRICS_FILE, RESULTS_FILE, read_history, read_results, series

Series = dict[str, list[tuple[int, float]]]  # metric name -> [(step, value)], in file order
REPORT_FILE = "report.html"
SPLITS = ("train", "val")  # test metrics are single numbers: the table has them


def read_series(run_dir: Path) -> Series:
    """Every numeric column of the run's metrics.csv as (step, value) points, NaN/inf left out."""
    rows = read_history(run_dir)
    names = {n for row in rows for n in row} - {"step", "epoch"}
    return {n: [(x, v) for x, v in series(rows, n) if math.isfinite(v)] for n in sorted(names)}


def panel_of(name: str) -> str | None:
    """Which chart a metric goes on: a split's metrics share one (train/loss with val/loss);
    others by their first two parts (all of optim/update_ratio/* together). None: not charted."""
    parts = name.split("/")
    if parts[0] in SPLITS:
        return "/".join(parts[1:])
    if parts[0] == "test":
        return None
    return "/".join(parts[:2])


LOG_SCALE = ("optim/update_ratio", "grad_norm", "lr")


def curve_figures(series: Mapping[str, Sequence[tuple[int, float]]]) -> dict[str, Any]:
    """{panel: matplotlib Figure}, one line per metric, against the optimizer step."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels: dict[str, list[str]] = defaultdict(list)
    for name in sorted(series):
        panel = panel_of(name)
        if panel is not None and len({v for _, v in series[name]}) > 1:  # constants: in the table
            panels[panel].append(name)
    figures = {}
    for panel in sorted(panels, key=lambda p: (p != "loss", "/" in p or p in LOG_SCALE, p)):
        names = panels[panel]
        fig = Figure(figsize=(4.2, 2.8), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        for name in names:
            steps, values = zip(*series[name], strict=True)
            marker = "o" if len(steps) < 30 else None
            ax.plot(
                steps,
                values,
                label=name.removeprefix(panel).strip("/") or name,
                marker=marker,
                ms=3,
            )
        if panel in LOG_SCALE and all(v > 0 for n in names for _, v in series[n]):
            ax.set_yscale("log")
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if len(names) > 1:
            ax.legend(fontsize=7)
        figures[panel] = fig
    return figures


def latest_pictures(folder: Path) -> dict[str, Path]:
    """{kind: file}: the newest epoch's picture of each kind, and the test pictures."""
    found: dict[str, tuple[int, Path]] = {}
    for path in sorted(folder.glob("*.png")):
        if path.name.endswith(".tmp.png"):  # being written
            continue
        m = re.fullmatch(r"epoch_(\d+)_(.+)\.png", path.name)
        if m:
            epoch, kind = int(m.group(1)), m.group(2)
            if kind not in found or epoch >= found[kind][0]:
                found[kind] = (epoch, path)
        else:
            found[path.stem] = (sys.maxsize, path)
    return {kind: path for kind, (_, path) in found.items()}


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def _figure_png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _table(rows: Sequence[tuple[str, Any]]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(_format(v))}</td></tr>" for k, v in rows
    )
    return f"<table>{cells}</table>"


def run_section(
    title: str, results: Mapping[str, Any], series: Series, pictures: Mapping[str, Path]
) -> str:
    """An HTML fragment for one run: summary table, curves, pictures."""
    summary = [
        (k, results[k])
        for k in (
            "status",
            "monitor",
            "choices",
            "overrides",
            "params",
            "epochs",
            "steps",
            "runtime_s",
        )
        if k in results
    ]
    summary += [(f"best {k}", v) for k, v in (results.get("best") or {}).items()]
    summary += sorted((k, v) for k, v in results.items() if k.startswith("test/"))
    summary += sorted(  # last values of the diagnostics: optim/state_bytes, perf/samples_per_s...
        (k, v)
        for k, v in results.items()
        if "/" in k and k.split("/")[0] not in ("test", "best", *SPLITS)
    )
    if results.get("git"):
        summary.append(("git", results["git"]))
    curves = "".join(
        f'<img alt="{html.escape(panel)}" src="{_png_uri(_figure_png(fig))}">'
        for panel, fig in curve_figures(series).items()
    )
    images = "".join(
        f'<figure><img alt="{html.escape(kind)}" src="{_png_uri(path.read_bytes())}">'
        f"<figcaption>{html.escape(path.name)}</figcaption></figure>"
        for kind, path in pictures.items()
    )
    return (
        f"<section><h2>{html.escape(title)}</h2>{_table(summary)}"
        f'<h3>Curves</h3><div class="curves">{curves or "no metrics.csv"}</div>'
        f"<h3>Pictures</h3>{images or '<p>no pictures (callbacks off?)</p>'}</section>"
    )


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}
table{border-collapse:collapse;font-size:13px;margin-bottom:1em}
th,td{border:1px solid #ddd;padding:2px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}.curves img{margin:2px}
figure{display:inline-block;margin:4px}figure img{max-width:100%}
figcaption{font-size:12px;color:#555}"""


def page(title: str, sections: Sequence[str]) -> str:
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"{''.join(sections)}</body></html>"
    )


def write_report(run_dir: str | Path) -> Path:
    """RUN_DIR/report.html from RUN_DIR's results.json, metrics.csv and pictures/."""
    run_dir = Path(run_dir)
    results_file, metrics_file = run_dir / RESULTS_FILE, run_dir / METRICS_FILE
    if not results_file.is_file() and not metrics_file.is_file():
        raise FileNotFoundError(
            f"{run_dir} is not a run directory (no results.json, no metrics.csv)"
        )
    results = read_results(run_dir) if results_file.is_file() else {}
    points = read_series(run_dir)
    pictures = latest_pictures(run_dir / "pictures")
    out = run_dir / REPORT_FILE
    out.write_text(page(f"Run {run_dir}", [run_section(str(run_dir), results, points, pictures)]))
    return out


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m harness.report RUN_DIR [RUN_DIR ...]  (writes RUN_DIR/report.html)")
        return 0 if argv else 2
    for run_dir in argv:
        try:
            print(write_report(run_dir))
        except FileNotFoundError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
