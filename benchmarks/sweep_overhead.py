"""Where a sweep's time went, per task: the whole run process as the runner saw it (wall) against
the time spent inside train() (results.json runtime_s: config check, data, W&B init, fit, test);
the difference is the per-run cost of running each run as its own process (interpreter start,
imports, Hydra's composition and train.py's pre-check, exit). Also the sweep's own wall time.

    python -m benchmarks.sweep_overhead runs/optim_lr_cpu     (from the project root)
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from harness.sweep.ledger import Ledger


def per_task(out: Path) -> dict[str, list[tuple[float, float]]]:
    """{data/model: [(the run's wall as the runner saw it, runtime_s inside train()), ...]}."""
    found: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for entry in Ledger(out / "ledger.jsonl").entries.values():
        try:
            results = json.loads((out / entry["run_dir"] / "results.json").read_text())
        except (OSError, KeyError, ValueError):
            continue
        if entry.get("wall_s") is None or results.get("runtime_s") is None:
            continue
        choices = results.get("choices", {})
        found[f"{choices.get('data')}/{choices.get('model')}"].append(
            (entry["wall_s"], results["runtime_s"])
        )
    return found


def walls_and_runtimes(out: Path) -> list[tuple[float, float]]:
    return [x for runs in per_task(out).values() for x in runs]


def main(out: Path) -> None:
    ledger = Ledger(out / "ledger.jsonl")
    per_task_ = per_task(out)
    print(
        "| task | runs | wall per run (s, median) | inside train() (s, median) | overhead (s, median) | overhead share |"
    )
    print("|---|---|---|---|---|---|")
    rows = [x for runs in per_task_.values() for x in runs]
    for task, runs in [*sorted(per_task_.items()), ("all", rows)]:
        wall = statistics.median(w for w, _ in runs)
        inside = statistics.median(r for _, r in runs)
        over = statistics.median(w - r for w, r in runs)
        share = sum(w - r for w, r in runs) / sum(w for w, _ in runs)
        print(f"| {task} | {len(runs)} | {wall:.1f} | {inside:.1f} | {over:.1f} | {share:.0%} |")
    times = sorted(e["time"] for e in ledger.entries.values() if "time" in e)
    print(
        f"\nrun processes: {sum(w for w, _ in rows):.0f} s in all; ledger span {times[-1] - times[0]:.0f} s"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
