"""Every benchmark, one command; each prints ratios measured side by side in this run.

    python -m benchmarks.run_all                 # about 25 minutes on 2 shared CPU cores
    python -m benchmarks.run_all --quick --repeats 1   # a few minutes: does everything run?

On a GPU machine the same command measures on the GPU (record those figures separately).
--threads sets torch's CPU threads (and OMP_NUM_THREADS of the processes it starts); on a CPU it
defaults to 1: on cores shared with other work, torch's threads spin against each other and step
times swing threefold, while one thread per process keeps the ratios steady.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds of each side-by-side pair")
    parser.add_argument("--quick", action="store_true", help="few steps: check that all run")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args()

    import torch

    threads = args.threads or (None if torch.cuda.is_available() else 1)
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)  # for the processes started below
        torch.set_num_threads(threads)

    from benchmarks import (
        data_path,
        pictures,
        shakespeare_char,
        startup,
        step_time,
        sweep_workers,
        wandb_overhead,
    )
    from benchmarks.common import ROOT, bench_data, machine

    bench_data()  # written once (a minute) before any clock starts
    started = time.time()
    figures = {"machine_before": machine()}
    print(json.dumps(figures["machine_before"]))
    print("\n== start-up ==")
    figures["startup"] = startup.main(args.repeats)
    print("\n== data path ==")
    figures["data_path"] = data_path.main(args.repeats, args.quick)
    print("\n== step time: harness vs plain PyTorch ==")
    figures["step_time"] = step_time.main(args.repeats, args.quick)
    print("\n== W&B offline logging vs off ==")
    figures["wandb"] = wandb_overhead.main(args.repeats, args.quick)
    print("\n== sweep: warm workers (fork) vs a process per run ==")
    batches = 2 if args.quick else 20  # per run: the overhead, not the training, is measured
    figures["sweep_workers"] = sweep_workers.main(
        args.repeats, [*sweep_workers.NARROW, "trainer.max_epochs=1", f"trainer.limit_train_batches={batches}"]
    )  # fmt: skip
    print("\n== pictures: each drawing, against the issue's commit ==")
    figures["pictures"] = pictures.main(args.repeats)
    # last: it sets WANDB_MODE=disabled in this process, which the sweeps above must not inherit
    print("\n== char-LM preset vs its plain loop ==")
    text = Path(os.environ.get("DATA_DIR") or ROOT.parent / "shared" / "data")
    if (text / "tinyshakespeare").is_dir():
        steps = 20 if args.quick else 250
        figures["char_lm"] = shakespeare_char.measure(
            [
                f"data.root={text}",
                f"trainer.max_steps={steps}",
                f"trainer.val_check_interval={steps // 2}",
            ],
            threads or 1,
        )
    else:
        print(f"skipped: no tinyshakespeare/ under {text} (set DATA_DIR)")
    figures["machine_after"] = machine()
    figures["minutes"] = (time.time() - started) / 60

    print("\n== summary ==")
    print(f"load average before {figures['machine_before']['load_average']}, "
          f"after {figures['machine_after']['load_average']}; {figures['minutes']:.1f} min")  # fmt: skip
    print("| benchmark | ratio | goal |")
    print("|---|---|---|")
    for row in figures["step_time"][:-1]:  # the last is the fixed cost, which has no goal
        for clock in ("wall", "cpu"):
            print(f"| step time, {row['case']}: harness / plain ({clock} time) | "
                  f"{row[clock]['ratio']:.3f} | <= 1.05 |")  # fmt: skip
    cost = figures["step_time"][-1]["cpu"]["extra_ms"]
    print(f"| harness fixed cost per step, CPU time (ms) | {cost:.2f} | (predicts the ratios) |")
    ratio = figures["data_path"]["ratio"]
    print(f"| data path: tensor / DataLoader, images/s | {ratio:.1f} | >= 8 |")
    for clock in ("wall", "cpu"):
        print(f"| W&B offline / logging off, steps/s ({clock} time) | "
              f"{figures['wandb'][clock]['ratio']:.3f} | >= 0.97 |")  # fmt: skip
    s = figures["startup"]
    print(f"| --help / import torch, seconds | {s['help_ratio']:.2f} | no torch import |")
    print(f"| first step / import torch, seconds | {s['first_step_ratio']:.2f} | small |")
    m = figures["sweep_workers"]["medians"]
    print(f"| sweep overhead per run, fork / process (s) | {m['fork']:.2f} / {m['process']:.2f} | fork <= 0.5 |")  # fmt: skip
    for row in figures["pictures"]["drawings"]:
        now = statistics.median(row["wall"]["now"])
        print(f"| one drawing, {row['drawing']}: wall s (median) | {now:.3f} | <= 0.1 |")
    if "char_lm" in figures:
        ratio = figures["char_lm"]["throughput_ratio"]["cpu"]
        print(f"| char-LM tokens per CPU-second, harness / plain | {ratio:.3f} | >= 0.98 |")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
