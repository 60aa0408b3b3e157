"""Warm workers against one process per run, side by side: the same digits sweep (12 runs by
default) run by `sweep.py run --jobs 1` with `--workers fork` and with `--workers process`, the
modes interleaved and alternated over repeats. Per mode: each run's overhead (its wall as the
runner saw it minus results.json runtime_s, the time inside train()), the median and its spread
over repeats, and the whole sweep's wall (the sweep.py command, start to exit) over the sum of
its runs' training time (and the same from the first run's start to the last one's end: the
runner's own start-up and its checks of every run left out).

    python -m benchmarks.sweep_workers [--repeats 2] [--epochs 1] [OVERRIDE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, load_average
from benchmarks.sweep_overhead import walls_and_runtimes
from harness.sweep.ledger import Ledger

SWEEP = ROOT / "sweeps" / "optim_lr_digits.yaml"
NARROW = ["optim.lr=0.001,0.01", "seed=0,1"]  # 3 optimizers x 2 lr x 2 seeds = 12 runs


def one_sweep(mode: str, out: Path, overrides: list[str]) -> dict[str, float]:
    argv = [sys.executable, "sweep.py", "run", str(SWEEP), "--jobs", "1", "--no-report",
            "--workers", mode, "--out", str(out), *overrides]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{mode}: exit {done.returncode}\n{done.stderr[-2000:]}")
    runs = walls_and_runtimes(out)
    times = [e["time"] for e in Ledger(out / "ledger.jsonl").entries.values()]
    first = min(json.loads(line)["time"] for line in (out / "ledger.jsonl").open())
    checked = re.search(r"overrides checked in ([\d.]+) s", done.stdout)
    return {"runs": len(runs), "overheads": [w - r for w, r in runs], "wall": wall,
            "training": sum(r for _, r in runs), "span": max(times) - first,
            "checks": float(checked.group(1)) if checked else None}  # fmt: skip


def main(repeats: int, overrides: list[str]) -> dict[str, dict]:
    seen: dict[str, list[dict]] = {"fork": [], "process": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            order = ("fork", "process") if r % 2 == 0 else ("process", "fork")
            for mode in order:
                before = load_average()[0]
                result = one_sweep(mode, Path(tmp) / f"{r}-{mode}", overrides)
                result["load"] = (before, load_average()[0])
                seen[mode].append(result)
                print(f"repeat {r} {mode}: {result['runs']} runs, overhead median "
                      f"{statistics.median(result['overheads']):.2f} s, sweep wall "
                      f"{result['wall']:.0f} s / training {result['training']:.0f} s = "
                      f"{result['wall'] / result['training']:.2f}x (first start to last end "
                      f"{result['span'] / result['training']:.2f}x; runner's checks "
                      f"{result['checks']} s), load {result['load'][0]:.1f}"
                      f"->{result['load'][1]:.1f}", flush=True)  # fmt: skip
    print("\n| mode | runs | overhead per run, s (median; per-repeat medians) | sweep wall / training (per repeat) | first start to last end / training |")  # fmt: skip
    print("|---|---|---|---|---|")
    medians = {}
    for mode, results in seen.items():
        every = [o for res in results for o in res["overheads"]]
        medians[mode] = statistics.median(every)
        per = ", ".join(f"{statistics.median(res['overheads']):.2f}" for res in results)
        ratios = ", ".join(f"{res['wall'] / res['training']:.2f}" for res in results)
        spans = ", ".join(f"{res['span'] / res['training']:.2f}" for res in results)
        print(f"| {mode} | {len(every)} | {medians[mode]:.2f} ({per}) | {ratios} | {spans} |")
    print(f"\nfork / process overhead (medians): {medians['fork'] / medians['process']:.3f}")
    return {"seen": seen, "medians": medians}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=2, help="rounds of the pair (order alternates)")
    p.add_argument("--epochs", type=int, default=1, help="trainer.max_epochs of each run")
    p.add_argument("overrides", nargs="*", help="more overrides for every run")
    args = p.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")  # as sweep.py gives its runs
    main(args.repeats, [*NARROW, f"trainer.max_epochs={args.epochs}", *args.overrides])
