"""What a picture costs: each drawing of diagnostics.figures (built and saved as a PNG, as
diagnostics.publish saves it) against the same drawing by an earlier commit's figures.py and
against a bare one-axes matplotlib savefig; optionally a whole default quick start against
another checkout's. Goal: one drawing <= 0.1 s; the quick start <= 0.7x the earlier commit's.

    python -m benchmarks.pictures [--repeats 5] [--before REV]
    python -m benchmarks.pictures --run /work/main [--run-repeats 2]   # + train.py side by side
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.common import ROOT, interleaved, paired_ratio, summary

BEFORE = "75f99fd"  # the last commit with an axes per image in a grid
NAMES = [str(d) for d in range(10)]
QUICK_START = ["train.py", "data=digits", "model=cnn"]  # the README's quick start, pictures on


def figures_at(rev: str) -> types.ModuleType | None:
    """diagnostics/figures.py as it was at commit `rev` (None where git cannot show it)."""
    shown = subprocess.run(["git", "show", f"{rev}:diagnostics/figures.py"], cwd=ROOT,
                           capture_output=True, text=True)  # fmt: skip
    if shown.returncode:
        print(f"no figures.py at {rev}: {shown.stderr.strip()}", file=sys.stderr)
        return None
    module = types.ModuleType(f"figures_{rev}")
    exec(compile(shown.stdout, f"{rev}:diagnostics/figures.py", "exec"), module.__dict__)
    return module


def drawings(figures: Any) -> dict[str, Callable[[], Any]]:
    """The default run's pictures on digits: 32 validation images, 10 classes, 8 saliency maps."""
    rng = np.random.default_rng(0)
    images = rng.random((32, 8, 8, 1))
    true, pred = rng.integers(0, 10, 32).tolist(), rng.integers(0, 10, 32).tolist()
    counts = rng.integers(0, 20, (10, 10))
    maps = {"input gradient": rng.random((8, 8, 8)),
            "integrated gradients": rng.standard_normal((8, 8, 8))}  # fmt: skip
    return {
        "prediction grid (32)": lambda: figures.prediction_grid(
            images, true, pred, NAMES, confidence=rng.random(32).tolist(), title="mistakes"
        ),
        "confusion matrix (10)": lambda: figures.confusion_matrix(counts, NAMES, "validation:"),
        "saliency (8 x 3)": lambda: figures.saliency(images[:8], maps, true[:8], pred[:8], NAMES),
    }


def bare() -> Any:
    """The floor: one axes, one 8x8 image, no labels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 4))
    FigureCanvasAgg(fig)
    fig.add_subplot().imshow(np.zeros((8, 8)), cmap="gray")
    return fig


def timed(
    draw: Callable[[], Any], save: Callable[[Any, Any], None]
) -> Callable[[], tuple[float, float]]:
    def run() -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        save(draw(), io.BytesIO())
        return time.perf_counter() - wall, time.process_time() - cpu

    return run


def drawing_times(repeats: int, before: str) -> list[dict[str, Any]]:
    from diagnostics import figures

    old = figures_at(before)
    now, then = drawings(figures), drawings(old) if old else {}
    save = figures.save_png  # as diagnostics.publish saves
    save_before = getattr(old, "save_png", lambda fig, f: fig.savefig(f, format="png", dpi=100))
    for fn in [bare, *now.values(), *then.values()]:  # fonts, colour maps: loaded once
        timed(fn, save)()
    rows = []
    for name in now:
        candidates = {"bare": timed(bare, save), "now": timed(now[name], save)}
        if name in then:
            candidates[before] = timed(then[name], save_before)
        times = interleaved(candidates, repeats)
        row: dict[str, Any] = {"drawing": name}
        for i, clock in enumerate(("wall", "cpu")):
            t = {k: [v[i] for v in vs] for k, vs in times.items()}
            row[clock] = {k: v for k, v in t.items()}
            line = f"{name}, {clock}: now {summary(t['now'])} s, bare {summary(t['bare'])} s"
            row[clock]["now/bare"] = paired_ratio(t["now"], t["bare"])
            line += f", now/bare {row[clock]['now/bare']:.2f}"
            if before in t:
                row[clock][f"now/{before}"] = paired_ratio(t["now"], t[before])
                line += f", {before} {summary(t[before])} s, now/{before} {row[clock][f'now/{before}']:.3f}"  # fmt: skip
            print(line)
        rows.append(row)
    return rows


def quick_start(checkout: str, run_dir: str) -> tuple[float, float]:
    """(wall, CPU) seconds of the quick start run from `checkout` (its own code and config)."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env.pop("PYTHONPATH", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, *QUICK_START, f"hydra.run.dir={run_dir}"], cwd=checkout,
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu


def quick_start_times(other: str, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        count = iter(range(10**6))
        for checkout in (other, str(ROOT)):  # untimed: byte-compiled files, page cache
            quick_start(checkout, f"{tmp}/{next(count)}")
        times = interleaved(
            {
                "other": lambda: quick_start(other, f"{tmp}/{next(count)}"),
                "this": lambda: quick_start(str(ROOT), f"{tmp}/{next(count)}"),
            },
            repeats,
        )
    row: dict[str, Any] = {"other": other}
    for i, clock in enumerate(("wall", "cpu")):
        t = {k: [v[i] for v in vs] for k, vs in times.items()}
        row[clock] = {**t, "ratio": paired_ratio(t["this"], t["other"])}
        print(f"quick start {' '.join(QUICK_START)}, {clock}: this checkout {summary(t['this'])} s, "
              f"{other} {summary(t['other'])} s, this/other {row[clock]['ratio']:.3f} (goal <= 0.7)")  # fmt: skip
    return row


def main(repeats: int = 5, before: str = BEFORE, run: str | None = None,
         run_repeats: int = 2) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {"drawings": drawing_times(repeats, before)}
    if run:
        out["quick_start"] = quick_start_times(run, run_repeats)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--before", default=BEFORE, help="the commit to compare drawings with")
    parser.add_argument(
        "--run", default=None, help="also time the quick start against this checkout"
    )
    parser.add_argument("--run-repeats", type=int, default=2)
    args = parser.parse_args()
    main(args.repeats, args.before, args.run, args.run_repeats)
