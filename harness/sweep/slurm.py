"""`sweep.py run FILE --launcher slurm` (`local`: submitit's local executor, for tests and one
machine): each run of the sweep is one submitit job that runs the very command the default
launcher would run, in the same run directory. `Launcher` is process.start's twin (the runner's
`start`); what the runner needs of a run is what it needs of a child process: a `proc` to poll,
signal and kill, which `SubmittedRun` gives over a job.

Signals, as SLURM sends them: hyperband's stop is SIGTERM (`scancel --signal=TERM`; locally the
controller forwards it), train.py saves and ends `interrupted`; the runner's Ctrl-C cancels the
job, queued or running. At the time limit SLURM sends USR2 (`--signal=USR2@signal_delay_s`):
submitit's handler in the job calls TrainCommand.checkpoint, which passes USR2 to train.py (the
harness holds it as SIGTERM: last.ckpt saved, harness.run.requeue), waits for it to end, and
requeues the same command, which resumes in the same run directory. Lightning's own SLURM requeue
is off in the run (it keeps SUBMITIT_FOLDER in its environment): submitit is the one owner.

The ledger records each run's job id and launcher; a restarted runner re-attaches to a job that is
still queued or running (`reattach`) instead of submitting it again.

Over 250 lines: submitting, signalling, re-attaching and reading back a job are the launcher's one
job, and they share the job's folder layout."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.rundir.files import EXIT_STATUS, read_status
from harness.sweep import process

LAUNCHERS = ("local", "slurm")
CONF = Path(__file__).resolve().parents[2] / "conf" / "hydra" / "launcher" / "slurm.yaml"
NOT_SETTINGS = ("_target_", "submitit_folder")  # the runner's: jobs go to DIR/.submitit/%j
# sacct states of a job that may still run (submitit's "incomplete" ones, less UNKNOWN)
ACTIVE = ("PENDING", "RUNNING", "REQUEUED", "COMPLETING", "PREEMPTED", "READY", "SUSPENDED",
          "CONFIGURING", "RESIZING", "REQUEUE_HOLD", "REQUEUE_FED", "STAGE_OUT", "SIGNALING")  # fmt: skip


def settings(pairs: list[str], conf: Path = CONF) -> dict[str, Any]:
    """hydra/launcher=slurm's settings (the submitit plugin's keys and types, the values of
    conf/hydra/launcher/slurm.yaml), then `KEY=VALUE` pairs; a bad one is a ConfigError."""
    import yaml
    from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    cfg = OmegaConf.structured(SlurmQueueConf)
    if conf.is_file():
        cfg = OmegaConf.merge(cfg, {k: v for k, v in yaml.safe_load(conf.read_text()).items()
                                    if k != "defaults"})  # fmt: skip
    allowed = sorted(k for k in cfg if k not in NOT_SETTINGS)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in allowed:
            raise ConfigError(f"--slurm {pair}: give KEY=VALUE, KEY a setting of "
                              f"hydra/launcher=slurm: {', '.join(allowed)}")  # fmt: skip
        try:
            cfg = OmegaConf.merge(cfg, {key: yaml.safe_load(value)})
        except (yaml.YAMLError, OmegaConfBaseException) as e:
            raise ConfigError(f"--slurm {pair}: {str(e).splitlines()[0]}") from None
    out = OmegaConf.to_container(cfg, resolve=False)
    out["name"] = None if OmegaConf.is_interpolation(cfg, "name") else out["name"]  # ${hydra...}
    return {k: out[k] for k in allowed}


def check_resume(entries: dict[str, dict[str, Any]], launcher: str) -> None:
    """Refuse to resume with another launcher while runs are recorded running as jobs: they
    may still be queued or running, and would run twice."""
    other = [e for e in entries.values()
             if e.get("state") == "running" and e.get("launcher") not in (None, launcher)]  # fmt: skip
    if other:
        ids = ", ".join(str(e.get("job_id")) for e in other)
        raise ConfigError(f"runs of this sweep are recorded running as --launcher "
                          f"{other[0]['launcher']} jobs ({ids}); resume with --launcher "
                          f"{other[0]['launcher']}, which re-attaches to those still running")  # fmt: skip


class TrainCommand:
    """The callable a job runs: the run's command as a child process (stdout and stderr into
    RUN_DIR/output.log), SIGTERM and SIGINT forwarded to it; returns its exit status."""

    def __init__(self, argv: list[str], cwd: str, run_dir: str, env: dict[str, str],
                 grace_s: float = 90.0) -> None:  # fmt: skip
        self.argv, self.cwd, self.run_dir, self.env, self.grace_s = argv, cwd, run_dir, env, grace_s

    def __call__(self) -> int:
        Path(self.run_dir).mkdir(parents=True, exist_ok=True)
        with open(Path(self.run_dir) / process.LOG_FILE, "ab") as log:  # a requeued job appends
            self.child = child = subprocess.Popen(
                self.argv, cwd=self.cwd, env={**os.environ, **self.env}, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=partial(process._die_with_parent, os.getpid()),
            )  # fmt: skip
        for signum in (signal.SIGTERM, signal.SIGINT):  # hyperband's stop, a cancel: the run saves
            signal.signal(signum, lambda s, f: child.send_signal(s))
        while child.poll() is None:  # not wait(): checkpoint() runs in a signal handler meanwhile
            time.sleep(0.2)
        return child.returncode

    def checkpoint(self) -> Any:
        """submitit, on USR2 (the time limit is near, or a pre-emption): let the run save and end
        (within grace_s), then requeue the same command; it resumes in the same directory."""
        import submitit

        child = getattr(self, "child", None)
        if child is not None:  # on SLURM the run may have had the signal already: held once
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(submitit.JobEnvironment._usr_sig())
            deadline = time.time() + self.grace_s
            while _running(child.pid) and time.time() < deadline:  # lock-free: no poll() here
                time.sleep(0.2)
            if _running(
                child.pid
            ):  # not ended in time: the requeued job resumes from an older save
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
        again = TrainCommand(self.argv, self.cwd, self.run_dir, self.env, self.grace_s)
        return submitit.helpers.DelayedSubmission(again)


class SubmittedRun:
    """A submitit job, seen as the runner sees a child process."""

    def __init__(self, job: Any, cluster: str, run_dir: Path) -> None:
        self.job, self.cluster, self.run_dir = job, cluster, run_dir
        self.pid = str(job.job_id)  # what the ledger records (locally, the controller's pid)
        self.returncode: int | None = None

    def _adopted(self) -> bool:
        """A local job an earlier runner started: its controller is no child of this one."""
        return self.cluster == "local" and self.job._process is None

    def poll(self) -> int | None:
        if self.returncode is None:
            ended = not _controller(self.pid) if self._adopted() else self.job.done()
            if ended:
                self.returncode = self._exit_status()
        return self.returncode

    def _exit_status(self) -> int:
        if self.job.paths.result_pickle.exists():
            with contextlib.suppress(Exception):  # an error outcome: requeue gave up, or a bug
                return int(self.job.result())
        # ended outside train.py (cancelled, out of time, node failure): what the run recorded
        return EXIT_STATUS.get(read_status(self.run_dir) or "failed", EXIT_STATUS["failed"])

    def send_signal(self, signum: int) -> None:
        """SIGTERM (hyperband's stop) as SLURM sends it; any other signal cancels the job."""
        if signum != signal.SIGTERM:
            return self.kill()
        if self.cluster == "local":
            self._to_controller(signum)  # it forwards SIGTERM to the job's task
        else:
            subprocess.run(["scancel", "--signal=TERM", self.pid], check=False)

    def kill(self) -> None:
        if self.cluster == "local":
            self._to_controller(signal.SIGINT)  # LocalJob.cancel: the controller ends its tasks
        else:
            self.job.cancel(check=False)

    def _to_controller(self, signum: int) -> None:
        if not self._adopted():
            self.job._process.send_signal(signum)
        elif _controller(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(self.pid), signum)

    def wait(self, timeout: float = 120.0) -> int | None:
        """The exit status, or None if the scheduler has not ended the job within `timeout` s
        (a cancelled job's end is SLURM's to record: the runner does not hang on it)."""
        deadline = time.time() + timeout
        while self.poll() is None and time.time() < deadline:
            time.sleep(0.5)
        return self.returncode

    def ledger_fields(self) -> dict[str, Any]:
        state = ("RUNNING" if self.returncode is None else "ENDED") if self._adopted() else self.job.state  # fmt: skip
        return {"job_id": self.pid, "launcher": self.cluster, "job_state": state}


class Launcher:
    """process.start's twin (Runner(start=...)): a run submitted as a job with `settings`
    (those of hydra/launcher=slurm, see `settings`) into `folder` (DIR/.submitit/%j)."""

    def __init__(self, cluster: str, folder: Path, settings: dict[str, Any],
                 name: str = "sweep") -> None:  # fmt: skip
        if cluster == "slurm" and shutil.which("sbatch") is None:
            raise ConfigError("--launcher slurm: no SLURM here (sbatch is not on PATH); "
                              "--launcher local runs the same jobs on this machine")  # fmt: skip
        self.cluster, self.folder, self.settings, self.name = cluster, Path(folder), settings, name
        self._executor: Any = None
        with tempfile.TemporaryDirectory() as scratch:  # the settings checked now, DIR untouched
            self._build(Path(scratch) / "%j")

    def executor(self) -> Any:
        """Built at the first submission, once the runs passed their checks (it makes folders)."""
        if self._executor is None:
            self._executor = self._build(self.folder)
        return self._executor

    def _build(self, folder: Path) -> Any:
        import submitit

        params = {k: v for k, v in self.settings.items() if v not in (None, {}, [])}
        timeouts = params.pop("max_num_timeout", 0)
        params.pop("array_parallelism", None)  # runs at once: the runner's --jobs
        params.setdefault("name", self.name)
        generic = submitit.AutoExecutor._valid_parameters()  # the rest as the plugin: slurm_*
        ex = submitit.AutoExecutor(folder=folder, cluster=self.cluster,
                                   **{f"{self.cluster}_max_num_timeout": timeouts})  # fmt: skip
        try:
            ex.update_parameters(**{k if k in generic else f"slurm_{k}": v for k, v in params.items()})  # fmt: skip
        except (AssertionError, NameError, ValueError) as e:
            raise ConfigError(f"--slurm: {str(e).splitlines()[0]}") from None
        return ex

    def __call__(self, key: str, params: dict[str, Any], argv: list[str], run_dir: Path, cwd: Path,
                 threads: int, keep: int | None = None) -> process.Job:  # fmt: skip
        """Submit the run (W&B offline as locally). `keep`, the runner's lock on the run, stays
        with the runner: a job elsewhere cannot inherit it; `reattach` stands in for it."""
        if self.cluster == "slurm":
            threads = self.settings.get("cpus_per_task") or threads  # the node's, not this one's
        env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads)),
               "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"), "PYTHONUNBUFFERED": "1"}  # fmt: skip
        run_dir.mkdir(parents=True, exist_ok=True)
        grace_s = 0.75 * float(self.settings.get("signal_delay_s") or 120)  # the rest: requeue
        job = self.executor().submit(TrainCommand(argv, str(cwd), str(run_dir), env, grace_s))
        return process.Job(key, params, run_dir, SubmittedRun(job, self.cluster, run_dir))  # type: ignore[arg-type]

    def reattach(self, key: str, params: dict[str, Any], run_dir: Path,
                 entry: dict[str, Any]) -> process.Job | None:  # fmt: skip
        """The job of a run the ledger records running, if it is still queued or running."""
        import submitit

        job_id = str(entry.get("job_id") or "")
        if entry.get("launcher") != self.cluster or not job_id:
            return None
        if self.cluster == "local":
            if not _controller(job_id):
                return None
            job = submitit.LocalJob(folder=self.folder, job_id=job_id)
        else:
            if _sacct_state(job_id) not in ACTIVE:
                return None
            job = submitit.SlurmJob(folder=self.folder, job_id=job_id)
        return process.Job(key, params, run_dir, SubmittedRun(job, self.cluster, run_dir))  # type: ignore[arg-type]


def _running(pid: int) -> bool:
    """Whether process `pid` has not exited (a zombie has), without reaping it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _controller(pid: str) -> bool:
    """Whether `pid` is a running controller of submitit's local executor (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{int(pid)}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    return b"submitit.local._local" in cmdline and _running(int(pid))


def _sacct_state(job_id: str) -> str | None:
    """SLURM's state of a job (None: sacct knows no such job); a failed sacct is a ConfigError,
    since a run still queued must not be submitted a second time."""
    from submitit.slurm.slurm import SlurmInfoWatcher

    cmd = ["sacct", "-o", "JobID,State,NodeList", "--parsable2", "-j", job_id.split("_")[0]]
    try:
        out = subprocess.run(cmd, capture_output=True, check=True, timeout=120).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise ConfigError(f"cannot tell whether SLURM job {job_id} still runs ({e}); start the "
                          "runner again once sacct answers") from None  # fmt: skip
    state = SlurmInfoWatcher().read_info(out).get(job_id, {}).get("State")
    return state.split()[0] if state else None  # "CANCELLED by 1000"
