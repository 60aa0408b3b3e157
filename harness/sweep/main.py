"""sweep.py's command line: `run` a sweep file here, `report` on a sweep's runs.

Over 250 lines: the subcommands' arguments, examples and refusals (each one line, exit 2) are the
command line's whole surface; the work is in runner, rerun and report."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.arguments import ArgumentParser
from harness.errors import ConfigError
from harness.report.analysis import BY, REL_TOLERANCE

EPILOG = """examples:
  python sweep.py run sweeps/optim_lr_digits.yaml --jobs 2 --out runs/digits trainer.max_epochs=2
  python sweep.py run sweeps/optim_lr_digits.yaml --out runs/digits --launcher slurm --slurm partition=gpu
  python sweep.py report runs/digits                 # writes runs/digits/report/report.{md,html}
  python sweep.py report ENTITY/PROJECT/SWEEP_ID --out report/   # an online sweep, by W&B's API
  python -m harness.tracking.wandb_sync --run runs/digits/runs/*  # upload the offline runs"""


WORKERS = ("fork", "process")
WORKERS_HELP = ("runs here: fork (default) forks each from a server that has imported torch, "
                "Lightning and W&B once (GPU runs start as processes); process: each is `python "
                "train.py ...`")  # fmt: skip


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="sweep.py",
        description="Run a W&B sweep file with no W&B server, and report on sweeps.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run every run of a sweep file here (resumable)")
    run.add_argument("sweep", type=Path, help="a W&B sweep file, e.g. sweeps/optim_lr_digits.yaml")
    run.add_argument("overrides", nargs="*", help="KEY=VALUE overrides for every run")
    run.add_argument("--out", type=Path, required=True, help="the sweep directory (resumes it)")
    run.add_argument("--jobs", type=int, help="runs at once (default 1; --launcher slurm: "
                     "array_parallelism, 64 in conf/hydra/launcher/slurm.yaml)")  # fmt: skip
    run.add_argument("--launcher", choices=("process", "slurm", "local"), default="process",
                     help="process: child processes here (default); slurm: one SLURM job per "
                     "run, through submitit; local: submitit's local executor (docs/cluster.md)")  # fmt: skip
    run.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                     help="a setting of hydra/launcher=slurm for the jobs (partition, timeout_min, "
                     "gpus_per_node ...; default conf/hydra/launcher/slurm.yaml); repeatable")  # fmt: skip
    run.add_argument("--count", type=int, help="at most this many runs (random/bayes: needed "
                     "unless the file sets run_cap)")  # fmt: skip
    run.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    run.add_argument("--workers", choices=WORKERS, help=WORKERS_HELP)
    rep = sub.add_parser("report", help="tables and plots of a sweep's runs (Markdown + HTML)")
    rep.add_argument("sources", nargs="+", help="sweep directories and/or W&B sweep paths "
                     "ENTITY/PROJECT/ID; several are compared in one report")  # fmt: skip
    rep.add_argument("--out", type=Path, help="where to write (default SOURCE/report for one "
                     "sweep directory)")  # fmt: skip
    rep.add_argument("--target", action="append", default=[], metavar="TASK=VALUE",
                     help="time-to-target goal for a task (default: within "
                     f"{REL_TOLERANCE:.0%}% of the best setting's mean score)")  # fmt: skip
    rep.add_argument("--baselines", type=Path, metavar="DIR", help="draw the baseline runs "
                     "stored in DIR (e.g. baselines/cpu_v1) beside a suite sweep's runs, read "
                     "with its rerun stage (docs/suite.md)")  # fmt: skip
    rep.add_argument("--by", choices=BY, default="best", help="rank runs by their score, the "
                     "best validation, whose checkpoint is tested (default), or the final one")  # fmt: skip
    again = sub.add_parser(
        "rerun", help="DeepOBS step 2: each optimizer's best setting, more seeds"
    )
    again.add_argument("source", type=Path, help="a finished sweep directory")
    again.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (default 10)")
    again.add_argument("--jobs", type=int, default=1, help="runs at once (default 1)")
    again.add_argument("--out", type=Path, help="default SOURCE/rerun")
    again.add_argument("--workers", choices=WORKERS, default="fork", help=WORKERS_HELP)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args, rest = p.parse_known_args(argv)  # overrides may also come after the options
    if rest and (args.command != "run" or any("=" not in r or r.startswith("-") for r in rest)):
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    if rest:
        args.overrides += rest
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "rerun":
            return _rerun(args)
        return _report(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: start the same command again to resume", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    from harness.run.summary import n_runs
    from harness.sweep.runner import Runner, ended_states
    from harness.sweep.spec import load_spec

    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(
            f"--out {args.out} is a file; give a folder (new, or a sweep's to resume)"
        )
    here = args.launcher == "process" and not args.slurm  # else submitit jobs (_launcher)
    if not here and args.workers is not None:
        raise ConfigError("--workers is for --launcher process (runs here): a submitit job "
                          "starts its run as python train.py")  # fmt: skip
    jobs = 1 if args.jobs is None else args.jobs
    with _workers(args.workers or "fork" if here else "process", jobs) as workers:
        if workers:
            workers.open()  # it imports while the runner reads the sweep and checks its runs
        spec = load_spec(args.sweep)
        start, jobs = (workers and workers.start, jobs) if here else _launcher(args, spec.name)
        runner = Runner(spec, args.out, jobs=jobs, extra=args.overrides, count=args.count,
                        start=start)  # fmt: skip
        summary = runner.run()
    print(
        f"{runner.spec.name}: {ended_states(summary)} ({n_runs(summary.total)} in the sweep) -> {args.out}"
    )
    for line in summary.failures:
        print(f"  failed: {line}", file=sys.stderr)
    _print_table(runner.spec.name, args.out / "runs")
    if not args.no_report:
        from harness.report.local import read_local
        from harness.report.sweep_page import write_report
        from harness.rundir.lock import hold

        with hold(
            args.out, "sweep report", wait=True, name="report.lock"
        ):  # one writer; runs go on
            path = write_report(read_local(args.out), args.out / "report")
        print(f"report: {path}")
    return 1 if summary.failures else 0


def finished_sweep(source: Path) -> dict[str, Any]:
    """What `sweep.py run` recorded of the sweep in `source` (sweep.json), once each of its runs has
    ended; else one ConfigError (best settings chosen from part of a sweep would go unnoticed)."""
    import json

    from harness.sweep.ledger import DONE, Ledger

    try:
        asked = json.loads((source / "sweep.json").read_text())
        plan = (
            json.loads((source / "plan.json").read_text())
            if (source / "plan.json").is_file()
            else None
        )
    except (OSError, ValueError):
        raise ConfigError(f"{source} is not a sweep directory (no sweep.json): give the --out of a "
                          "finished sweep.py run") from None  # fmt: skip
    entries = Ledger(source / "ledger.jsonl").entries.values()
    ended = sum(e.get("state") in (*DONE, "failed") for e in entries)
    total = len(plan) if plan is not None else len(entries)
    if ended < total:
        raise ConfigError(f"{source} is not finished: {ended} of {total} runs ended; finish it first "
                          "(the same sweep.py run command resumes it)")  # fmt: skip
    return asked


@contextlib.contextmanager
def _workers(kind: str, jobs: int) -> Iterator[Any]:
    """None (--workers process), or warm workers, whose fork server ends with the sweep."""
    if kind == "process" or jobs < 1:
        yield None
        return
    from harness.sweep.workers import Workers

    workers = Workers(threads=max(1, (os.cpu_count() or 1) // jobs))  # as Runner.launch gives
    try:
        yield workers
    finally:
        workers.close()


def _launcher(args: argparse.Namespace, name: str):
    """--launcher slurm|local: the runner's `start` (submitit jobs) and the runs at once."""
    from harness.sweep import slurm
    from harness.sweep.ledger import Ledger

    if args.launcher == "process":
        raise ConfigError("--slurm sets the jobs of a submitit launcher: add --launcher slurm "
                          "(or local)")  # fmt: skip
    settings = slurm.settings(args.slurm)
    slurm.check_resume(Ledger(args.out / "ledger.jsonl").entries, args.launcher)
    start = slurm.Launcher(args.launcher, args.out / ".submitit" / "%j", settings, name=name)
    jobs = 1 if args.launcher == "local" else settings["array_parallelism"]
    jobs = jobs if args.jobs is None else args.jobs
    return start, jobs


def _print_table(name: str, runs_dir: Path) -> None:
    """The sweep's runs and their scores, on one screen (the best ones when there are many)."""
    from harness.run.summary import multirun_table, sweep_runs

    for line in multirun_table(sweep_runs(runs_dir, since=0), [], title=name, report_hint=False):
        print(line)


def _report(args: argparse.Namespace) -> int:
    from harness.report.records import merge
    from harness.report.sweep_page import parse_targets, write_report

    sweeps = []
    for source in args.sources:
        if Path(source).is_dir():
            from harness.report.local import read_local

            sweeps.append(read_local(Path(source)))
        else:
            from harness.report.online import read_wandb

            sweeps.append(read_wandb(source))
    out = args.out
    if out is None:
        if len(args.sources) != 1 or not Path(args.sources[0]).is_dir():
            raise ConfigError("give --out: where to write a report on several or online sweeps")
        out = Path(args.sources[0]) / "report"
    if args.baselines is not None:
        from harness.report.baselines import with_baselines

        merged = with_baselines([Path(s) for s in args.sources], args.baselines)
    else:
        merged = merge(sweeps)
    path = write_report(merged, out, targets=parse_targets(args.target), by=args.by)
    print(f"report: {path}")
    return 0


def _rerun(args: argparse.Namespace) -> int:
    from harness.report.local import read_local
    from harness.report.records import merge
    from harness.report.sweep_page import write_report
    from harness.sweep.rerun import best_sweep_files
    from harness.sweep.runner import Runner, ended_states
    from harness.sweep.spec import load_spec

    asked = finished_sweep(args.source)
    out = args.out or args.source / "rerun"
    failed = 0
    dirs = []
    files = best_sweep_files(read_local(args.source), asked["sweep"], args.seeds, out)
    with _workers(args.workers, args.jobs) as workers:
        if workers:
            workers.open()  # it imports while the runners check their runs
        start = workers and workers.start
        for path in files:
            dirs.append(out / path.stem)
            spec = load_spec(path)
            # an override that narrowed a swept parameter (optim.lr=0.01,0.1) is fixed by now
            extra = [o for o in asked.get("extra", []) if o.split("=")[0] not in spec.config["parameters"]]  # fmt: skip
            runner = Runner(spec, dirs[-1], jobs=args.jobs, extra=extra, start=start)
            summary = runner.run()
            failed += len(summary.failures)
            print(f"{runner.spec.name}: {ended_states(summary)}")
    path = write_report(merge([read_local(d) for d in dirs]), out / "report")
    print(f"sweep files: {out}/*.yaml (wandb sweep FILE runs one online); report: {path}")
    return 1 if failed else 0
