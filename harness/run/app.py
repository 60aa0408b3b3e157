"""The command line -> one run: compose once, check once, prepare the run directory, train, say how
it ended, and return the exit status sweep runners read (harness.rundir.files.EXIT_STATUS; 2 for
bad input, with one line on stderr and nothing written).

`run_command(overrides)` is a plain function: train.py calls it for a single run, and a sweep
worker can call it in a forked child. Multirun jobs (-m) come through Hydra's own launcher to
`hydra_job`, which runs the same checks once. Hydra itself writes nothing in either path
(hydra.output_subdir is null in conf/config.yaml): RUN_DIR/.hydra/ is written here, after the
checks, with secrets masked.

Imports nothing heavy at module level: `python train.py --help` must stay fast. (Over 250 lines:
the two entry paths, run_command and hydra_job, share every step after composition.)
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, chain, from_ctrl_c
from harness.rundir.files import (
    BAD_INPUT,
    CHECKPOINT_DIR,
    EXIT_STATUS,
    HYDRA_DIR,
    LAST,
    LOG_FILE,
    RESULTS_FILE,
)

# Hydra flags that do their own thing (help, printing the config, multirun...): Hydra runs these.
HYDRA_FLAGS = ("-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info", "-m", "--multirun",
               "-p", "--package", "--shell-completion", "-sc", "--resolve", "--version", "--config-path",
               "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--experimental-rerun")  # fmt: skip


def is_single_run(argv: list[str]) -> bool:
    """A plain list of overrides (no Hydra flag): one run, by run_command."""
    return not any(a.split("=", 1)[0] in HYDRA_FLAGS for a in argv)


def run_command(overrides: list[str]) -> int:
    """One run from command-line overrides; the exit status. Ctrl-C outside training (Lightning
    handles it there), in the set-up too: one line and the interrupted status, no traceback."""
    try:
        return _run_command(overrides)
    except BaseException as e:  # what got past its own handling (a second Ctrl-C, too)
        if not from_ctrl_c(e):
            raise
        return interrupted(None)


def _run_command(overrides: list[str]) -> int:
    import numpy  # noqa: F401  before torch, whose C start-up would swallow a Ctrl-C in this import

    from harness.config.command import check_command

    try:
        checked = check_command(overrides)
        run_dir = Path(os.path.abspath(str(checked.composed.hydra.run.dir)))  # ${now:...} once
        lock, resume_from, restart = locked_run_dir(run_dir, checked.cfg)
    except ConfigError as e:
        return bad_input(e)
    except OSError as e:  # the lock file on a full disk
        if disk_full(e) is None:
            raise
        return no_space(disk_full(e), run_dir)
    try:
        data = prepared_data(checked.cfg, run_dir)
        if data is None:
            return BAD_INPUT
        start_job(checked.composed, run_dir)
        write_hydra_files(run_dir, checked.composed)
        return run_checked(checked.cfg, run_dir, resume_from, data=data, restart=restart)
    except BaseException as e:
        if disk_full(e) is not None:  # .hydra/ or data on a full disk (training: run_checked)
            _remove_if_only_hydra_files(run_dir)
            return no_space(disk_full(e), run_dir)
        if not from_ctrl_c(e):
            raise
        status = interrupted(run_dir)
        _remove_if_only_hydra_files(run_dir)  # under the lock: nothing of it had started
        return status
    finally:
        lock.release()


def ignore_later_ctrl_c() -> None:
    """train.py's first step: the first Ctrl-C raises KeyboardInterrupt (Lightning stops training
    on it; elsewhere the run ends `interrupted`) and turns SIGINT off, so that another (a sweep's
    run gets the terminal's, then the runner's) cannot land while the first is handled. Left as
    it is when not Python's default (ignored in a background job)."""
    import signal

    def first(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, first)


def interrupted(run_dir: Path | None) -> int:
    """Ctrl-C outside training (harness.errors.from_ctrl_c): later ones ignored while this
    process ends (as Lightning does in training), one line, the interrupted exit status."""
    import signal

    with contextlib.suppress(ValueError):  # ValueError: not the main thread, which gets SIGINT
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    last = run_dir / CHECKPOINT_DIR / LAST if run_dir is not None else None
    again = f"resume from {last}" if last is not None and last.is_file() else "start it"
    print(f"interrupted; run the same command again to {again}", file=sys.stderr)
    return EXIT_STATUS["interrupted"]


def prepared_data(cfg: Any, run_dir: Path) -> Any:
    """The run's data, set up and its sizes checked (harness.run.recipe.prepare); None, with the
    one line said and the lock file removed from a fresh directory, when they do not fit."""
    from datamodules import DatasetError
    from harness.run.recipe import prepare

    try:
        return prepare(cfg)
    except (ConfigError, DatasetError) as e:
        _remove_if_only_hydra_files(run_dir)
        bad_input(e)
        return None


def locked_run_dir(run_dir: Path, cfg: Any) -> tuple[Any, Path | None, bool]:
    """(the run directory's lock, held until the run ends; where the run starts; whether that
    fresh start restarts an attempt killed before its first checkpoint, decided before this
    command's .hydra/ is written). One process at a time in a run directory: a second one is
    refused, naming the first's PID, before it has written anything (an OS lock: the kernel
    releases it when the holder dies, even by kill -9)."""
    from harness.run.resume import check_run_dir, restarts
    from harness.rundir.lock import refuse_if_held, take

    if not first_process():  # a DDP rank or node Lightning started: rank zero holds the lock
        return _NoLock(), check_run_dir(run_dir, cfg), False  # and logs: nothing to replay here
    refuse_if_held(run_dir, "run directory", hint=IN_USE_HINT)  # writes nothing
    check_run_dir(run_dir, cfg)  # checked before the lock file is made: a refusal writes nothing
    lock = take(run_dir, "run directory", hint=IN_USE_HINT)
    try:
        resume_from = check_run_dir(run_dir, cfg)  # again, now that nothing else can change it
        return lock, resume_from, resume_from is None and restarts(run_dir)
    except ConfigError:
        _remove_if_only_hydra_files(run_dir)  # before letting go: never the next process's files
        lock.release()
        raise


IN_USE_HINT = "wait for it to end, or choose another hydra.run.dir"
# Set (and not 0) in the other processes of one multi-process run: Lightning's DDP launcher,
# torchrun, SLURM's srun tasks.
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")


def first_process() -> bool:
    return all(os.environ.get(name, "0") == "0" for name in RANK_VARIABLES)


class _NoLock:
    def release(self) -> None:
        pass


def hydra_job(cfg: Any) -> float | None:
    """The body of train.py's @hydra.main (multirun jobs, and runs given Hydra flags): Hydra has
    composed the job, made its directory and set up logging; check once, record, run.

    Returns the run's score (best/<monitor>), what Hydra's sweepers (Optuna...) optimise. In a
    multirun a job that did not finish (diverged, or a bad config: that job's failure) returns
    the worst value, and the next job starts; an interrupted one (Ctrl-C, SIGTERM) ends the
    multirun. Outside a multirun the job exits with its status, as run_command's."""
    import numpy  # noqa: F401  before torch (run_command says why)
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from harness.config.checks import check_config
    from harness.config.command import task_config

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        composed = cfg.copy()
        _with_hydra_node(composed, HydraConfig.instance().cfg)
        resolved = task_config(composed)
        check_config(resolved)
        lock, resume_from, restart = locked_run_dir(run_dir, resolved)
    except ConfigError as e:
        _remove_if_only_hydra_files(run_dir)
        status = bad_input(e)
        bad = (str(run_dir), str(e), list(hydra_cfg.overrides.task))
        return _job_ended(multirun, status, None, cfg, bad)
    results: dict[str, Any] = {}
    bad = (str(run_dir), "bad input (above)", list(hydra_cfg.overrides.task))
    try:
        data = prepared_data(resolved, run_dir)
        if data is None:
            return _job_ended(multirun, BAD_INPUT, None, resolved, bad)
        write_hydra_files(run_dir, composed)
        status = run_checked(resolved, run_dir, resume_from, results, data, restart)
    finally:
        lock.release()
    return _job_ended(multirun, status, results, resolved, bad)


def _job_ended(
    multirun: bool, status: int, results: dict | None, cfg: Any, bad: tuple[str, str, list]
) -> float | None:
    """hydra_job's ending: the exit (a single run, an interrupted job) or the sweeper's value."""
    from harness.run.summary import BAD_JOBS, objective

    if status and (not multirun or status == EXIT_STATUS["interrupted"]):
        sys.exit(status)
    if status == BAD_INPUT:  # nothing written: only this process knows the job ended so
        BAD_JOBS.append(bad)
    from omegaconf import OmegaConf

    return objective(results or {}, OmegaConf.select(cfg, "task.mode", default="max"))


def run_checked(
    cfg: Any,
    run_dir: Path,
    resume_from: Path | None,
    out: dict | None = None,
    data: Any = None,
    restart: bool | None = None,
) -> int:
    """Train a checked config (`data`: already set up, or None); the closing block and the exit
    status (`out` gets the results)."""
    from datamodules import DatasetError
    from harness.run import requeue
    from harness.run.console import lightning_logs_to_root, silence_noise
    from harness.run.recipe import train
    from harness.run.summary import say_closing

    silence_noise()
    lightning_logs_to_root()
    held = requeue.install()  # a submitit job: its requeue signal saves last.ckpt first
    try:
        results = train(
            cfg, run_dir, checked=True, resume_from=resume_from, restart=restart, data=data
        )
    except (ConfigError, DatasetError) as e:  # found only once the data is read
        _remove_if_only_hydra_files(run_dir)
        return bad_input(e)
    except Exception as e:
        full = disk_full(e)
        if full is None:
            raise
        return no_space(full, run_dir)
    if out is not None:
        out.update(results)
    say_closing(results, run_dir)
    status = results["status"]
    if held is not None:
        held.after_run(status)  # stopped by it: resubmit and requeue (submitit exits here)
    if status == "interrupted":
        print(f"interrupted; run the same command again to resume from {run_dir / CHECKPOINT_DIR / LAST}",
              file=sys.stderr)  # fmt: skip
    elif status == "diverged":
        print(f"error: {results['error']}; the run is marked diverged in {run_dir / RESULTS_FILE}",
              file=sys.stderr)  # fmt: skip
    return EXIT_STATUS[status]


def no_space(full: str, run_dir: Path) -> int:
    """One line for a full disk (`full`: what it stopped writing); the failed status."""
    print(f"error: no space left on the device ({full}); free some, then run the same "
          f"command again: it resumes from {run_dir / CHECKPOINT_DIR / LAST} if one was "
          "saved, as any kill", file=sys.stderr)  # fmt: skip
    return EXIT_STATUS["failed"]


def disk_full(error: BaseException) -> str | None:
    """What a full disk stopped writing (the file name, if known), when that is what `error`
    comes from: an OSError ENOSPC, or the RuntimeError torch.save raises over one."""
    import errno

    for seen in chain(error):
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return str(seen.filename or "a file of the run")
        if "No space left on device" in str(seen):
            return "a file of the run"
    return None


def bad_input(error: Exception) -> int:
    if from_ctrl_c(error):  # not bad input: the caller's Ctrl-C handling ends the run
        raise error
    print(f"error: {error}", file=sys.stderr)
    return BAD_INPUT


def start_job(composed: Any, run_dir: Path) -> None:
    """What Hydra does for a run before calling its task: the job's runtime fields, the run
    directory, the job's environment and working directory, logging to stdout and train.log."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import configure_log
    from hydra.types import RunMode
    from omegaconf import open_dict, read_write

    with read_write(composed.hydra), open_dict(composed.hydra):
        composed.hydra.runtime.output_dir = str(run_dir)
        if composed.hydra.mode is None:  # as Hydra's own command line records a single run
            composed.hydra.mode = RunMode.RUN
            composed.hydra.overrides.hydra.append("hydra.mode=RUN")
    HydraConfig.instance().set_config(composed)
    run_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update({str(k): str(v) for k, v in composed.hydra.job.env_set.items()})
    if composed.hydra.job.chdir:
        os.chdir(run_dir)
    configure_log(composed.hydra.job_logging, composed.hydra.verbose)


def write_hydra_files(run_dir: Path, composed: Any) -> None:
    """RUN_DIR/.hydra/: config.yaml (the run's config as composed), hydra.yaml (Hydra's node),
    overrides.yaml (the command line's overrides), as Hydra writes them, secrets masked."""
    from omegaconf import OmegaConf, open_dict, read_write

    from harness.rundir.files import write_text_atomic
    from harness.rundir.secrets import redact, secret_values

    task = copy.deepcopy(composed)
    with read_write(task), open_dict(task):
        del task["hydra"]
    files = {
        "config.yaml": task,
        "hydra.yaml": OmegaConf.masked_copy(composed, "hydra"),
        "overrides.yaml": composed.hydra.overrides.task,
    }
    folder = run_dir / HYDRA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    secrets = secret_values()
    for name, node in files.items():
        write_text_atomic(folder / name, redact(OmegaConf.to_yaml(node), secrets))


def _with_hydra_node(cfg: Any, hydra_cfg: Any) -> None:
    """cfg (a Hydra task's config) with the hydra node put back, as composed."""
    from omegaconf import open_dict

    with open_dict(cfg):
        cfg.hydra = hydra_cfg.hydra if "hydra" in hydra_cfg else hydra_cfg


def _remove_if_only_hydra_files(run_dir: Path) -> None:
    """A run that failed its checks leaves nothing behind but what Hydra or start_job made."""
    from harness.rundir.lock import LOCK_FILE

    names = {p.name for p in run_dir.iterdir()} if run_dir.is_dir() else set()
    if names <= {HYDRA_DIR, LOG_FILE, LOCK_FILE}:
        _stop_logging_into(run_dir)  # its train.log goes too: a caller that goes on logs elsewhere
        shutil.rmtree(run_dir, ignore_errors=True)
        logging.getLogger(__name__).debug("removed %s", run_dir)


def _stop_logging_into(run_dir: Path) -> None:
    """Close and detach the root logger's file handlers that write into run_dir (start_job's)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        name = getattr(handler, "baseFilename", None)
        if name is not None and Path(name).is_relative_to(run_dir):
            root.removeHandler(handler)
            handler.close()
