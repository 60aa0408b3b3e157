"""The report's figures (matplotlib, Agg: no display needed). Each function writes one PNG."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from harness.report.analysis import Setting, mean_std
from harness.rundir.files import finite, series


def _colors(names: list[str]) -> dict[str, str]:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {n: cycle[i % len(cycle)] for i, n in enumerate(sorted(names))}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def sensitivity(task: str, per_opt: dict[str, list[Setting]], metric: str, path: Path) -> Path:
    """A run value (score or final) vs learning rate, one curve per optimizer (mean ± std over seeds); a learning
    rate at which a seed diverged is an x on the plot's lower edge."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    colors = _colors(list(per_opt))
    finite_values: list[float] = []
    diverged: dict[str, list[float]] = {}
    for opt, items in sorted(per_opt.items()):
        xs, ms, ss = [], [], []
        for s in items:
            finals = s.finals(metric)
            if s.lr is not None and finals:
                m, sd = mean_std(finals)
                xs.append(s.lr), ms.append(m), ss.append(sd)
                finite_values += finals
            if s.lr is not None and s.diverged:
                diverged.setdefault(opt, []).append(s.lr)
        if xs:
            ax.errorbar(xs, ms, yerr=ss, marker="o", ms=4, capsize=3, label=opt, color=colors[opt])
    if finite_values:
        lo, hi = min(finite_values), max(finite_values)
        pad = 0.08 * (hi - lo or 1.0)
        ax.set_ylim(lo - 2 * pad, hi + pad)
        for opt, lrs in diverged.items():
            ax.scatter(lrs, [lo - 1.5 * pad] * len(lrs), marker="x", s=40, color=colors[opt],
                       label=f"{opt}: diverged")  # fmt: skip
    ax.set_xscale("log")
    ax.set(xlabel="learning rate", ylabel=metric, title=f"{task}: learning-rate sensitivity")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return _save(fig, path)


def curves(task: str, best: dict[str, Setting], metric: str, path: Path) -> Path:
    """train/loss and the metric against steps for each optimizer's best setting, every seed."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    colors = _colors(list(best))
    for opt, s in sorted(best.items()):
        for i, run in enumerate(s.runs):
            for ax, name in zip(axes, ("train/loss", metric), strict=True):
                pts = [(x, y) for x, y in series(run.history, name) if finite(y)]
                if pts:
                    ax.plot(*zip(*pts, strict=True), color=colors[opt], alpha=0.8, lw=1,
                            label=f"{opt} ({s.setting})" if i == 0 else None)  # fmt: skip
    axes[0].set_yscale("log")
    for ax, name in zip(axes, ("train/loss", metric), strict=True):
        ax.set(xlabel="step", ylabel=name)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.suptitle(f"{task}: best setting per optimizer (every seed)", fontsize=10)
    return _save(fig, path)


def profile(taus: list[float], rho: dict[str, list[float]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    colors = _colors(list(rho))
    for opt, ys in sorted(rho.items()):
        ax.step(taus, ys, where="post", label=opt, color=colors[opt])
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set(xlabel="tau (time / fastest optimizer's time)", ylabel="fraction of tasks",
           title="performance profile (time to target)")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def taus_for(times: dict[str, dict[str, float]]) -> list[float]:
    """1 .. a little past the largest finite ratio, log-spaced."""
    ratios = [
        t / min(per.values())
        for per in times.values()
        for t in per.values()
        if math.isfinite(t) and min(per.values()) > 0
    ]
    top = max([4.0, *ratios]) * 1.2
    n = 200
    return [top ** (i / (n - 1)) for i in range(n)]
