"""The loggers of a run: W&B (when logger.wandb is set and W&B is not disabled) and the CSV log
(logger.csv), both skipping the rows a resumed run replays."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from harness.rundir.files import CHECKPOINT_DIR, Replayed
from harness.rundir.provenance import save_to_wandb
from harness.tracking import tensorboard
from harness.tracking import wandb as wandb_run
from harness.tracking.csv import RunCSVLogger


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
