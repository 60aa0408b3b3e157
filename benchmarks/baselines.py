"""Store a finished suite sweep (and its rerun stage) as baselines: OUT/runs.jsonl + meta.json.

The whole regeneration of the shipped CPU baselines (hundreds of runs; docs/suite.md; a sweep
directory a problem, `experiment=NAME` narrowing the grid, stores the same way):
    python sweep.py run sweeps/suite_cpu_baselines.yaml --jobs 2 --out runs/baselines_cpu
    python sweep.py rerun runs/baselines_cpu --seeds 10 --jobs 2
    python -m benchmarks.baselines runs/baselines_cpu --out baselines/cpu_v1
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from harness.errors import ConfigError
from harness.report.baselines import write_baselines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", type=Path, nargs="+",
                   help="the suite sweep directories (each with its rerun/), e.g. one a problem")  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="e.g. baselines/cpu_v1")
    p.add_argument("--suite", default="cpu_v1", help="the suite's name (default cpu_v1); a name "
                   "not in harness/suite.py stores problems of any definition")  # fmt: skip
    p.add_argument("--command", help="how the runs were made (default: the usual two commands)")
    args = p.parse_args(argv)
    command = args.command or " && ".join(
        f"python sweep.py run sweeps/suite_cpu_baselines.yaml --out {shlex.quote(str(source))}"
        f" && python sweep.py rerun {shlex.quote(str(source))} --seeds 10"
        for source in args.source
    )
    try:
        out = write_baselines(args.source, args.out, args.suite, command)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"baselines: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
