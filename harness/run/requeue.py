"""SLURM requeue on the submitit path (hydra/launcher=slurm), with one owner: submitit.

SLURM sends USR2 `signal_delay_s` seconds before the time limit (submitit's sbatch line
`--signal=USR2@120`). submitit's own handler would requeue the job and exit on the spot, mid-batch,
with nothing saved since the last periodic last.ckpt. Here, that signal instead stops training the
way SIGTERM does (Lightning finishes the batch; harness.run.callbacks.LastCheckpoint saves last.ckpt;
results.json says "interrupted"; W&B marks the run preempted), and once the run has written its
results, submitit's handler runs: it resubmits the same job (hydra-submitit-launcher's
`checkpoint`: the same overrides and job number, so the same run directory) and requeues it
(`scontrol requeue`). The requeued job resumes from last.ckpt by itself (harness.run.resume).

Lightning's own SLURM requeue (SLURMEnvironment auto_requeue: SIGUSR1, hpc_ckpt_N.ckpt,
`scontrol requeue`) is turned off in submitit jobs, so that a job is never requeued twice. A job
submitted with a plain sbatch script keeps it (Lightning is then the one owner; docs/resume.md)."""

from __future__ import annotations

import logging
import os
import signal
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)


def under_submitit() -> bool:
    """Whether this process is a submitit job (submitit sets this before calling the task)."""
    return "SUBMITIT_FOLDER" in os.environ


class Requeue:
    """The requeue signal, held until the run has saved and recorded what it did."""

    def __init__(self, signum: int, submitit_handler: Any) -> None:
        self.signum, self.submitit_handler = signum, submitit_handler
        self.received = False

    def handler(self, signum: int, frame: FrameType | None) -> None:
        log.warning("%s: the job is about to be stopped; saving last.ckpt to be requeued",
                    signal.Signals(signum).name)  # fmt: skip
        self.received = True
        # Lightning's SIGTERM handler during fit: stop after this batch (SIGTERMException).
        # Outside fit (data setup, testing) it is submitit's, which only logs: the run goes on.
        on_term = signal.getsignal(signal.SIGTERM)
        if callable(on_term):
            on_term(signal.SIGTERM, frame)

    def after_run(self, status: str) -> None:
        """Requeue now if the signal stopped the run (submitit's handler exits the process)."""
        if self.received and status == "interrupted" and callable(self.submitit_handler):
            self.submitit_handler(self.signum, None)


def install() -> Requeue | None:
    """Hold submitit's requeue signal (see the module doc); None outside a submitit job."""
    if not under_submitit():
        return None
    from submitit import JobEnvironment

    signum = JobEnvironment._usr_sig()  # USR2, or $SUBMITIT_PREEMPT_SIGNAL
    requeue = Requeue(signum, signal.getsignal(signum))
    signal.signal(signum, requeue.handler)
    return requeue


def cluster_plugins() -> list[Any]:
    """Trainer plugins: in a submitit job on SLURM, Lightning's SLURM environment without its own
    requeue; elsewhere none (Lightning's defaults)."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    if under_submitit() and SLURMEnvironment.detect():
        return [SLURMEnvironment(auto_requeue=False)]
    return []
