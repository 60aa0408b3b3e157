"""The names of the files in a run directory, and what a run's exit status says.

RUN_DIR/.hydra/{config,hydra,overrides}.yaml   the composed config, as the run started
RUN_DIR/train.log                              the run's log lines
RUN_DIR/metrics.csv                            one row per logging call (harness.rundir.metrics)
RUN_DIR/results.json                           status, final and best metrics (harness.rundir.results)
RUN_DIR/checkpoints/{best,last}.ckpt           best by task.monitor; last for resuming
RUN_DIR/checkpoints/wandb_id.txt               the W&B run a resumed run logs to
RUN_DIR/wandb/                                 W&B's files (offline runs: upload with wandb sync)
"""

from __future__ import annotations

HYDRA_DIR = ".hydra"
LOG_FILE = "train.log"
METRICS_FILE = "metrics.csv"
RESULTS_FILE = "results.json"
CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"
WANDB_ID_FILE = "wandb_id.txt"

# results.json "status" -> train.py's exit status. A bad config or missing data exits with
# BAD_INPUT before any results.json is written; any other exit status is a crash ("failed").
EXIT_STATUS = {"finished": 0, "failed": 1, "diverged": 3, "interrupted": 130}
BAD_INPUT = 2
RESULT_STATES = tuple(EXIT_STATUS)


def status_of_exit(code: int) -> str:
    """The status an exit code says the run ended with (a signal from outside: interrupted)."""
    if code < 0:
        return "interrupted"
    return {v: k for k, v in EXIT_STATUS.items() if k != "failed"}.get(code, "failed")
