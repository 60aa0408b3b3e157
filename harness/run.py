"""train(cfg, run_dir): one run from a composed config, start to finish.

check the config -> seed -> data (its shapes) -> network + LightningModule -> W&B + CSV loggers
-> Trainer.fit -> test the best checkpoint -> results.json. W&B is closed whatever happens.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from datamodules.errors import DatasetError
from harness import wandb_logger
from harness.build import build_callbacks, build_datamodule, build_module, build_net, speed_up
from harness.callbacks import (
    ConfigInCheckpoint,
    LastCheckpoint,
    MetricStates,
    ProgressBar,
    RandomState,
    StopOnNonFiniteLoss,
    ValidateAtLastStep,
)
from harness.checkpoint_io import AtomicCheckpointIO
from harness.checks import check_config, explained
from harness.cluster import requeue
from harness.errors import ConfigError, DataUnavailableError, Diverged
from harness.metrics_log import METRICS_FILE, Replayed, RunCSVLogger, logged_rows
from harness.results import EXIT_STATUS, RESULTS_FILE, BestMetrics, metrics_of, write_results
from harness.resume import LAST, check_fits, check_history, resume_point
from harness.rundir.provenance import provenance, save_to_wandb
from harness.secrets import redact, redact_files
from harness.tracking import names, tensorboard

log = logging.getLogger(__name__)
PROJECT_DIR = Path(__file__).resolve().parent.parent


def git_state() -> dict[str, Any]:
    """The commit the code came from and whether it had uncommitted changes (None outside git)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(PROJECT_DIR), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def train(cfg: DictConfig, run_dir: str | Path) -> dict[str, Any]:
    """Run one training job in run_dir; return what results.json holds. Its "status" is
    finished, diverged (a NaN/inf loss stopped it) or interrupted (SIGTERM, Ctrl-C; it resumes
    from its last checkpoint when run again); on any other error it is "failed" and the error
    propagates. A bad config or missing data raises before anything is written."""
    started = time.time()
    run_dir = Path(run_dir)
    check_config(cfg)
    config = redact(OmegaConf.to_container(cfg, resolve=True))
    resume_from = resume_point(cfg.ckpt_path, run_dir, config)

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    try:
        datamodule.prepare_data()
        with explained(f"data={cfg.data._target_}"):  # e.g. a label_fraction too small for it
            datamodule.setup("fit")
            dims = datamodule.dims
    except DatasetError as e:
        raise DataUnavailableError(str(e)) from None
    with explained("model"):
        net = build_net(cfg, dims)
        module = build_module(cfg, net, dims)
    if resume_from is not None:
        check_fits(resume_from, module.state_dict(), config, cfg.ckpt_path or str(resume_from))
        log.info("resuming from %s", resume_from)
    n_params = sum(p.numel() for p in net.parameters())
    speed_up(net, compile=cfg.compile, channels_last=cfg.channels_last)

    choices, overrides = _choices(), _overrides()
    meta = {
        "params": n_params,
        **provenance(run_dir),  # command, versions, hardware, git (and RUN_DIR/code.diff)
        "name": names.run_name(config, choices),
        "choices": choices,
        "overrides": redact(overrides),
        "run_dir": str(run_dir),
        "resumed_from": str(resume_from) if resume_from else None,
    }
    ckpt_dir = run_dir / "checkpoints"
    # The rows earlier attempts of this run logged. Those of the steps between the checkpoint and
    # the kill are replayed now; neither logger records them again.
    earlier = logged_rows(run_dir / METRICS_FILE) if resume_from else None
    if resume_from is not None:
        check_history(resume_from, run_dir, config, earlier)
    loggers: list[Any] = []
    wandb_settings = cfg.logger.get("wandb")
    wb = None
    if wandb_settings is not None:
        wandb_id = wandb_logger.run_id(ckpt_dir, resuming=resume_from is not None)
        wb, meta["wandb_mode"] = wandb_logger.make_wandb_logger(
            wandb_logger.labelled(
                names.named(OmegaConf.to_container(wandb_settings, resolve=True), config, choices),
                wandb_logger.run_labels(choices, overrides),
            ),
            run_dir,
            wandb_id,
            {**config, "meta": meta},
            Replayed(earlier) if earlier is not None else None,
        )
        if wb is not None:
            loggers.append(wb)
    if cfg.logger.get("csv"):
        loggers.append(RunCSVLogger(run_dir, Replayed(earlier) if earlier is not None else None))
    tb = tensorboard.make_tensorboard_logger(
        cfg.logger.get("tensorboard"), run_dir, resume_from, meta["name"]
    )
    if tb is not None:
        loggers.append(tb)

    best_checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best",
        monitor=cfg.task.monitor,
        mode=cfg.task.mode,
        save_top_k=1,
        auto_insert_metric_name=False,
    )
    last_checkpoint = LastCheckpoint(ckpt_dir / LAST, cfg.checkpoint_every_n_steps)
    best = BestMetrics(cfg.task.monitor, cfg.task.mode)
    with explained("callbacks"):
        extra_callbacks = build_callbacks(cfg)
    trainer = L.Trainer(
        **cfg.trainer,
        logger=loggers or False,
        callbacks=[
            StopOnNonFiniteLoss(),
            RandomState(),
            MetricStates(),
            best,
            ConfigInCheckpoint(config),
            ValidateAtLastStep(),
            *([ProgressBar()] if cfg.trainer.get("enable_progress_bar", True) else []),
            *extra_callbacks,
            best_checkpoint,  # Lightning runs checkpoint callbacks last, in this order
            last_checkpoint,
        ],
        plugins=[AtomicCheckpointIO(), *requeue.cluster_plugins()],
        default_root_dir=str(run_dir),
    )
    # Known once the Trainer has resolved devices and nodes. data.batch_size is per device.
    meta["world_size"] = trainer.world_size
    if isinstance(cfg.data.get("batch_size"), int):
        meta["global_batch_size"] = (
            cfg.data.batch_size * trainer.world_size * trainer.accumulate_grad_batches
        )
    if wb is not None and trainer.is_global_zero:  # Lightning's loggers write on rank zero only
        wandb_logger.save_run_id(ckpt_dir, wandb_id)
        wb.log_hyperparams({"meta": meta})
        save_to_wandb(wb.experiment, run_dir)
    results: dict[str, Any] = {
        "status": "failed",
        "monitor": cfg.task.monitor,
        "mode": cfg.task.mode,
        **meta,
    }
    best_path: str | None = None  # as fit left it: testing "best" restores older callback state
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        best_path = best_checkpoint.best_model_path
        results.update(metrics_of(trainer))
        has_test = getattr(datamodule, "has_test_split", True)  # Tiny Shakespeare has none
        if cfg.test and not has_test:
            log.info("data=%s has no test split: nothing to test", cfg.data._target_)
        if cfg.test and has_test and best_checkpoint.best_model_path:
            trainer.test(
                module, datamodule=datamodule, ckpt_path="best", weights_only=True, verbose=False
            )
            results.update({k: v for k, v in metrics_of(trainer).items() if k.startswith("test/")})
        results["status"] = "finished"
    except Diverged as e:
        results.update(
            metrics_of(trainer), status="diverged", diverged_at_step=e.step, error=str(e)
        )
        log.error("%s; the last good checkpoint is %s", e, last_checkpoint.path)
    except SystemExit as e:
        # Lightning turns SIGTERM into SIGTERMException and Ctrl-C into sys.exit(1), raised
        # while the KeyboardInterrupt is being handled.
        if not isinstance(e, SIGTERMException) and not isinstance(e.__context__, KeyboardInterrupt):
            raise
        results.update(metrics_of(trainer), status="interrupted")
    finally:
        results.update(
            best=best.best,
            best_checkpoint=_relative(best_path or best_checkpoint.best_model_path, run_dir),
            last_checkpoint=_relative(
                last_checkpoint.path if Path(last_checkpoint.path).is_file() else None, run_dir
            ),
            epochs=trainer.current_epoch,
            steps=trainer.global_step,
            runtime_s=round(time.time() - started, 3),
        )
        results = redact(results)
        if trainer.is_global_zero:  # every rank has the same (reduced) metrics; one writes them
            write_results(run_dir, results)
            if wb is not None:
                _update_summary(wb, results)
            if tb is not None:
                tensorboard.record_score(tb, config, results)
        wandb_logger.finish(
            EXIT_STATUS[results["status"]], preempted=results["status"] == "interrupted"
        )
    return results


def _update_summary(logger: Any, results: dict[str, Any]) -> None:
    try:
        logger.experiment.summary.update(
            {k: v for k, v in results.items() if isinstance(v, (int, float, str))}
        )
    except Exception as e:  # W&B must not turn a finished run into a failed one
        log.warning("W&B: could not update the run summary (%s)", e)


def _relative(path: str | None, run_dir: Path) -> str | None:
    if not path:
        return None
    try:
        return str(Path(path).relative_to(run_dir))
    except ValueError:
        return path


def _overrides() -> list[str]:
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except Exception:  # train() called outside a Hydra app (tests, notebooks)
        return []


def _choices() -> dict[str, Any]:
    """The option picked in each config group ({"data": "digits", "optim": "adamw", ...}): how a
    report names a run's task and optimizer (several options share one class: sgd, momentum)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        choices = HydraConfig.get().runtime.choices
    except Exception:  # train() called outside a Hydra app
        return {}
    return {
        str(k): v if isinstance(v, str) else list(v)  # callbacks: a list of options
        for k, v in choices.items()
        if v is not None and not str(k).startswith("hydra")
    }


def run_from_hydra(cfg: DictConfig) -> None:
    """The body of train.py's @hydra.main: run, turn expected failures into one clear line, and
    exit with the status sweep runners read (harness.results.EXIT_STATUS; 2 for bad input)."""
    from hydra.core.hydra_config import HydraConfig

    from harness.cli import fail

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.output_subdir is not None:
        redact_files(run_dir / hydra_cfg.output_subdir)
    held = requeue.install()  # a submitit job: its requeue signal saves last.ckpt first
    try:
        results = train(cfg, run_dir)
    except (ConfigError, DataUnavailableError) as e:
        _remove_if_only_hydra_files(run_dir)
        fail(str(e))
    status = results["status"]
    if held is not None:
        held.after_run(status)  # stopped by it: resubmit and requeue (submitit exits here)
    if status == "interrupted":
        print(f"interrupted; run the same command again to resume from {run_dir / 'checkpoints' / LAST}",
              file=sys.stderr)  # fmt: skip
    elif status == "diverged":
        print(f"error: {results['error']}; the run is marked diverged in {run_dir / RESULTS_FILE}",
              file=sys.stderr)  # fmt: skip
    if status != "finished":
        sys.exit(EXIT_STATUS[status])


def _remove_if_only_hydra_files(run_dir: Path) -> None:
    """A run that failed its checks leaves nothing behind but what Hydra wrote before it started."""
    import shutil

    names = {p.name for p in run_dir.iterdir()} if run_dir.is_dir() else set()
    if names <= {".hydra", "train.log"}:
        shutil.rmtree(run_dir, ignore_errors=True)
