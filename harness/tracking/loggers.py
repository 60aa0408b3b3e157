"""The loggers of a run: W&B (when logger.wandb is set and W&B is not disabled), TensorBoard
(logger.tensorboard) and the CSV log (logger.csv). W&B and CSV skip the rows a resumed run replays;
TensorBoard purges them.

RunCSVLogger writes RUN_DIR/metrics.csv so that it survives a kill and a resume: Lightning's CSV
logger, each row on disk as soon as it is logged (a killed run has lost none), keeping an earlier
attempt's rows and skipping those a resumed run replays (harness.rundir.files.Replayed; on a CPU
with a fixed seed the replayed values are the same numbers)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from omegaconf import DictConfig, OmegaConf

from harness.rundir.files import CHECKPOINT_DIR, Replayed, read_metrics, write_text_atomic
from harness.rundir.provenance import save_to_wandb
from harness.tracking import tensorboard
from harness.tracking import wandb as wandb_run


@dataclass
class Loggers:
    all: list[Any] = field(default_factory=list)
    wandb: Any | None = None  # the W&B logger, when there is one
    wandb_id: str | None = None
    tensorboard: Any | None = None  # logger.tensorboard: RUN_DIR/tensorboard/NAME/


def make_loggers(
    cfg: DictConfig,
    run_dir: Path,
    config: dict[str, Any],
    meta: dict[str, Any],
    resume_from: Path | None,
    earlier: Counter | None,
    restart: bool = False,
) -> Loggers:
    """`resume_from`: the checkpoint this run resumes from (`restart`: an attempt killed before
    its first checkpoint is started again, as the same W&B run); `earlier`: the rows earlier attempts
    of this run logged (None: a fresh start). meta gets "wandb_mode"; W&B's config holds it (the
    same dict, filled in further later)."""
    from harness.run.meta import named, run_choices, run_overrides

    loggers = Loggers()
    settings = cfg.logger.get("wandb")
    if settings is not None:
        loggers.wandb_id = wandb_run.run_id(
            run_dir / CHECKPOINT_DIR, resuming=resume_from is not None or restart
        )
        loggers.wandb, meta["wandb_mode"] = wandb_run.make_wandb_logger(
            wandb_run.labelled(
                named(OmegaConf.to_container(settings, resolve=True), config, run_choices()),
                wandb_run.run_labels(run_choices(), run_overrides()),
            ),
            run_dir,
            loggers.wandb_id,
            {**config, "meta": meta},
            Replayed(earlier) if earlier is not None else None,
        )
        if loggers.wandb is not None:
            loggers.all.append(loggers.wandb)
    if cfg.logger.get("csv"):
        loggers.all.append(
            RunCSVLogger(run_dir, Replayed(earlier) if earlier is not None else None)
        )
    loggers.tensorboard = tensorboard.make_tensorboard_logger(
        cfg.logger.get("tensorboard"), run_dir, resume_from, meta.get("name", "")
    )
    if loggers.tensorboard is not None:
        loggers.all.append(loggers.tensorboard)
    return loggers


def announce(loggers: Loggers, run_dir: Path, trainer: Any, meta: dict[str, Any]) -> None:
    """Once the Trainer knows its ranks: rank zero saves the W&B id beside the checkpoints and
    sends the run's metadata (Lightning's loggers write on rank zero only)."""
    if loggers.wandb is not None and trainer.is_global_zero:
        wandb_run.save_run_id(run_dir / CHECKPOINT_DIR, loggers.wandb_id)
        loggers.wandb.log_hyperparams({"meta": meta})
        save_to_wandb(loggers.wandb.experiment, run_dir)  # code.diff among the run's files


def update_summary(loggers: Loggers, results: dict[str, Any]) -> None:
    if loggers.wandb is None:
        return
    try:
        loggers.wandb.experiment.summary.update(
            {k: v for k, v in results.items() if isinstance(v, (int, float, str))}
        )
    except Exception as e:  # W&B must not turn a finished run into a failed one
        wandb_run.log.warning("W&B: could not update the run summary (%s)", e)


class _Writer(ExperimentWriter):
    """Lightning's CSV writer, except that it keeps the rows of an earlier attempt (Lightning's
    deletes metrics.csv whenever the folder is not empty) and rewrites the file atomically when
    a new column appears."""

    def __init__(self, log_dir: str, replayed: Replayed | None) -> None:
        self.replayed = replayed
        super().__init__(log_dir)
        if replayed is not None:
            self.metrics_keys = read_metrics(Path(self.metrics_file_path), cut_torn_line=True)[0]

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if self.replayed is None and path.is_file():
            path.unlink()  # a fresh run: a file left by an attempt without a checkpoint goes

    def log_metrics(self, metrics_dict: dict[str, float], step: int | None = None) -> None:
        if self.replayed is not None and self.replayed.skip(step, metrics_dict):
            return
        super().log_metrics(metrics_dict, step)

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        _, rows = read_metrics(Path(self.metrics_file_path), cut_torn_line=True)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(Path(self.metrics_file_path), out.getvalue())


class RunCSVLogger(CSVLogger):
    """RUN_DIR/metrics.csv, each row on disk as soon as it is logged. `replayed` (a resumed run):
    keep the file and skip the rows it already holds; None: start a new file."""

    def __init__(self, run_dir: str | Path, replayed: Replayed | None = None) -> None:
        super().__init__(save_dir=str(run_dir), name="", version="", flush_logs_every_n_steps=1)
        self._replayed = replayed

    @property
    @rank_zero_experiment
    def experiment(self) -> _Writer:
        if self._experiment is None:
            Path(self.log_dir).mkdir(parents=True, exist_ok=True)
            self._experiment = _Writer(self.log_dir, self._replayed)
        return self._experiment
