"""`python -m harness.tracking.wandb_sync RUN_DIR...`: upload offline runs as one W&B run each,
however many times they were resumed.

A run resumed after a kill or a requeue writes one offline folder per attempt
(RUN_DIR/wandb/offline-run-DATE-ID/, the same ID). Synced one at a time with older wandb, a later
folder replaced the earlier one's history (wandb issues #3841, #5865). wandb 0.31 syncs the
folders of one run given in one `wandb sync --id ID` call one after another, in order of start
time. This command checks first that the folders together hold every logged row exactly once
and in step order (the harness never logs a replayed step twice), then prints that one call per
run, or runs it with --run."""

from __future__ import annotations

import itertools
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.arguments import ArgumentParser
from harness.rundir.files import CHECKPOINT_DIR, WANDB_ID_FILE
from harness.tracking.wandb_records import items_of, records


@dataclass
class Segment:
    folder: Path  # RUN_DIR/wandb/offline-run-DATE-ID
    start: float  # the run record's start time, seconds since the epoch
    project: str
    entity: str
    steps: list[int]  # trainer/global_step of every history row, as logged


def run_id(run_dir: Path) -> str:
    path = run_dir / CHECKPOINT_DIR / WANDB_ID_FILE
    if not path.is_file():
        raise ValueError(f"{run_dir} has no {path.relative_to(run_dir)}: not a run that used W&B")
    return path.read_text().strip()


def read_segment(folder: Path, wandb_id: str) -> Segment:
    path = folder / f"run-{wandb_id}.wandb"
    start, project, entity, steps = 0.0, "", "", []
    for r in records(path, timeout=0):  # a killed attempt has no exit record: read what is there
        kind = r.WhichOneof("record_type")
        if kind == "run":
            start = r.run.start_time.ToMicroseconds() / 1e6
            project, entity = r.run.project, r.run.entity
        elif kind == "history":
            items = items_of(r.history.item)
            if "trainer/global_step" in items:
                steps.append(int(items["trainer/global_step"]))
    return Segment(folder, start, project, entity, steps)


def segments(run_dir: Path) -> list[Segment]:
    """The run's offline folders, oldest first (by the start time each records)."""
    wandb_id = run_id(run_dir)
    folders = sorted((run_dir / "wandb").glob(f"offline-run-*-{wandb_id}"))
    if not folders:
        raise ValueError(f"{run_dir}/wandb holds no offline run {wandb_id}")
    return sorted(
        (read_segment(f, wandb_id) for f in folders), key=lambda s: (s.start, s.folder.name)
    )


def check_order(found: list[Segment]) -> None:
    """Each attempt logs only steps after the previous attempt's last: a step logged by two
    attempts would draw twice (or, synced the old way, replace the other's)."""
    for before, after in itertools.pairwise(found):
        if before.steps and after.steps and after.steps[0] < before.steps[-1]:
            raise ValueError(
                f"{after.folder.name} starts at step {after.steps[0]}, before the end of "
                f"{before.folder.name} (step {before.steps[-1]}): the attempts overlap"
            )
    for s in found:
        if s.steps != sorted(s.steps):
            raise ValueError(f"{s.folder.name}: steps out of order")


def sync_command(run_dir: Path, include_synced: bool = False) -> list[str]:
    """The one `wandb sync` call that uploads every attempt of this run into its W&B run."""
    found = segments(run_dir)
    check_order(found)
    argv = ["wandb", "sync", "--id", run_id(run_dir)]
    if found[0].project:
        argv += ["--project", found[0].project]
    if found[0].entity:
        argv += ["--entity", found[0].entity]
    if include_synced:
        argv.append("--include-synced")
    return argv + [str(s.folder) for s in found]


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m harness.tracking.wandb_sync",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--run", action="store_true", help="run the commands (default: print them)")
    parser.add_argument(
        "--include-synced", action="store_true", help="upload again what was synced"
    )
    args = parser.parse_args(argv)
    try:
        commands = [sync_command(d, args.include_synced) for d in args.run_dirs]
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    status = 0
    for command in commands:
        print(shlex.join(command), flush=True)
        if args.run:
            status = subprocess.run(command).returncode or status
    return status


if __name__ == "__main__":
    sys.exit(main())
