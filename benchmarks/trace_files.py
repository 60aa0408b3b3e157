"""How many of the project's own files the main job passes through before its first optimizer step.

    python benchmarks/trace_files.py [--root CHECKOUT] [--list]

Runs `python train.py model=resnet optim=adamw` (on fixture CIFAR-10 written to a temporary
folder, one step, no W&B) inside this process, from CHECKOUT (default: this checkout, so another
commit can be measured from a `git worktree`). It counts the .py files under CHECKOUT whose code
runs (a module's top level counts: importing it runs it) and the .yaml files under CHECKOUT that
are opened, and stops at the first optimizer step; it also says in how many of the .py files a
function is called (the call path a reader follows, without the modules that are only imported). A file is counted once however often it is
read. This file itself is not counted.
"""

from __future__ import annotations

import argparse
import builtins
import io
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=HERE, help="the checkout to trace")
    p.add_argument("--list", action="store_true", help="print the files too")
    args = p.parse_args()
    root = args.root.resolve()
    data = Path(tempfile.mkdtemp(prefix="trace-data-"))
    # Fixture data from this checkout's tests, in a child: nothing of either checkout loads here.
    subprocess.run([sys.executable, "-c", f"from tests.fixtures import write_cifar10; "
                    f"from pathlib import Path; write_cifar10(Path({str(data)!r}))"],
                   cwd=HERE, check=True)  # fmt: skip
    run_dir = Path(tempfile.mkdtemp(prefix="trace-run-")) / "run"
    argv = ["model=resnet", "optim=adamw", f"data.root={data}", "data.download=false",
            "data.verify=false", "data.val_size=20", "data.batch_size=8", "trainer.max_steps=1", "logger.wandb=null",
            "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}"]  # fmt: skip
    py, yaml, called = trace(root, argv)
    print(f"{root}: {len(py)} .py + {len(yaml)} .yaml = {len(py) + len(yaml)} files; "
          f"a function called in {len(called)} of the .py files")  # fmt: skip
    if args.list:
        for f in sorted(py | yaml):
            print(f"  {'*' if f in called else ' '} {f}")
    sys.stdout.flush()
    os._exit(0)


def trace(root: Path, argv: list[str]) -> tuple[set[str], set[str], set[str]]:
    """(.py files run, .yaml files opened, .py files with a function called: the call path,
    without the modules only imported) under root, up to the first optimizer step."""
    import runpy

    from torch.optim.optimizer import register_optimizer_step_pre_hook

    os.environ.setdefault("WANDB_MODE", "disabled")
    py: set[str] = set()
    called: set[str] = set()
    yaml: set[str] = set()
    me = str(Path(__file__).resolve())
    prefix = str(root) + os.sep

    stopped = threading.Event()  # after the first step nothing more is counted

    def profile(frame, event, arg):  # type: ignore[no-untyped-def]
        if event == "call" and not stopped.is_set():
            name = frame.f_code.co_filename
            if name.startswith(prefix) and name != me:
                py.add(os.path.relpath(name, root))
                if frame.f_code.co_name != "<module>":  # a function of it is called
                    called.add(os.path.relpath(name, root))

    real_open = builtins.open

    def tracked_open(file, *a, **k):  # type: ignore[no-untyped-def]
        name = os.path.abspath(os.fspath(file)) if isinstance(file, (str, os.PathLike)) else ""
        if name.startswith(prefix) and name.endswith(".yaml") and not stopped.is_set():
            yaml.add(os.path.relpath(name, root))
        return real_open(file, *a, **k)

    class FirstStep(BaseException):
        pass

    def stop(optimizer, args, kwargs):  # type: ignore[no-untyped-def]
        stopped.set()
        raise FirstStep

    register_optimizer_step_pre_hook(stop)
    builtins.open = io.open = tracked_open
    os.chdir(root)
    sys.path.insert(0, str(root))
    sys.argv = [str(root / "train.py"), *argv]
    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        runpy.run_path(str(root / "train.py"), run_name="__main__")
    except BaseException:
        pass  # FirstStep, or whatever the code turned it into on its way out
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
        builtins.open = io.open = real_open
    if not stopped.is_set():  # the run must reach its first step, or the count means nothing
        raise SystemExit("the run ended before its first optimizer step")
    return py, yaml, called


if __name__ == "__main__":
    main()
