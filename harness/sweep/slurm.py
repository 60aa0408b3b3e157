"""The offline sweep runner's runs as submitit jobs (`--launcher slurm`; `local` for tests): each
run is one job that runs the very command the local runner would run, in the same run directory.

What the runner needs of a run is what it needs of a child process (harness.sweep.process): a
`proc` to poll, signal and kill. `SubmittedRun` gives that over a submitit job: poll() is None
until the job ended, then train.py's exit status; send_signal(SIGTERM) (hyperband's stop) reaches
train.py through submitit (`scancel --signal` on SLURM), which stops it with its results written.
The ledger records the job id as `pid`; `reattach` finds a job again after a runner restart.

At the time limit, submitit's USR2 handler in the job requeues it (TrainCommand.checkpoint): the
requeued job runs the same command in the same run directory, which resumes from last.ckpt."""

from __future__ import annotations

import os
import signal
import subprocess
from functools import partial
from pathlib import Path
from typing import Any

from harness.sweep import process


class TrainCommand:
    """The callable a job runs: the run's command as a child process (stdout and stderr into
    RUN_DIR/output.log), SIGTERM forwarded to it; returns its exit status."""

    def __init__(self, argv: list[str], cwd: str, run_dir: str, env: dict[str, str]) -> None:
        self.argv, self.cwd, self.run_dir, self.env = argv, cwd, run_dir, env

    def __call__(self) -> int:
        env = {**os.environ, **self.env}
        env.pop("SUBMITIT_FOLDER", None)  # the child is not the submitit job: submitit is here
        Path(self.run_dir).mkdir(parents=True, exist_ok=True)
        with open(Path(self.run_dir) / process.LOG_FILE, "ab") as log:
            child = subprocess.Popen(self.argv, cwd=self.cwd, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     preexec_fn=partial(process._die_with_parent, os.getpid()))  # fmt: skip
            # hyperband's stop (and SLURM's last SIGTERM) go to the run, which saves and ends
            signal.signal(signal.SIGTERM, lambda s, f: child.send_signal(signal.SIGTERM))
            return child.wait()

    def checkpoint(self) -> Any:
        """submitit at the time limit: run the same command again (it resumes), requeued."""
        import submitit

        return submitit.helpers.DelayedSubmission(self)


class SubmittedRun:
    """A submitit job, seen as the runner sees a child process."""

    def __init__(self, job: Any) -> None:
        self.job = job
        self.pid = job.job_id  # what the ledger records
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and self.job.done():
            try:
                self.returncode = int(self.job.result())
            except Exception:  # the job failed outside train.py (node failure, cancelled)
                self.returncode = 1
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if getattr(self.job, "_process", None) is not None:  # local executor: its controller
            self.job._process.send_signal(signum)  # forwards the signal to the job's task
        else:
            subprocess.run(["scancel", f"--signal={signal.Signals(signum).name[3:]}",
                            str(self.job.job_id)], check=False)  # fmt: skip

    def kill(self) -> None:
        self.job.cancel(check=False)

    def wait(self) -> int | None:
        self.job.wait()
        return self.poll()


def executor(folder: Path, cluster: str, parameters: dict[str, Any]) -> Any:
    """A submitit executor ("slurm" or "local") with the launcher's settings, e.g. those of
    conf/hydra/launcher/slurm.yaml (timeout_min, partition, gpus_per_node, max_num_timeout...)."""
    import submitit

    params = dict(parameters)
    max_num_timeout = params.pop("max_num_timeout", 10)
    ex = submitit.AutoExecutor(folder=folder, cluster=cluster,
                               **{f"{cluster}_max_num_timeout": max_num_timeout})  # fmt: skip
    ex.update_parameters(**params)
    return ex


def start(ex: Any, key: str, params: dict[str, Any], argv: list[str], run_dir: Path, cwd: Path,
          threads: int) -> process.Job:  # fmt: skip
    """process.start's twin: the run submitted as a job (W&B offline, threads as locally)."""
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads)),
           "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"), "PYTHONUNBUFFERED": "1"}  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    job = ex.submit(TrainCommand(argv, str(cwd), str(run_dir), env))
    return process.Job(key, params, run_dir, SubmittedRun(job))  # type: ignore[arg-type]


def reattach(folder: Path, job_id: str) -> SubmittedRun:
    """A SLURM job submitted by an earlier runner (its id from the ledger), to poll again."""
    import submitit

    return SubmittedRun(submitit.SlurmJob(folder=folder, job_id=str(job_id)))
