"""train(cfg, run_dir): one run from a composed config, start to finish, as a recipe:

    check -> build (seed, data and its shapes, network + LightningModule, loggers, Trainer)
          -> fit -> test the best checkpoint -> record (results.json, W&B summary)

Each step is a function below, in that order. W&B is closed whatever happens.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from harness.config.checks import check_config, check_sizes
from harness.errors import Diverged, constructor_errors
from harness.protocol import DataTraits, traits
from harness.run.best import metrics_of
from harness.run.build import (
    RunCallbacks,
    build_callbacks,
    build_datamodule,
    build_module,
    build_net,
    build_trainer,
    speed_up,
)
from harness.run.meta import add_trainer_metadata, run_metadata, run_name
from harness.run.resume import check_fits, check_history, drop_earlier_best, restarts, resume_point
from harness.rundir.files import EXIT_STATUS, METRICS_FILE, logged_rows, write_results
from harness.rundir.secrets import redact
from harness.tracking import tensorboard
from harness.tracking import wandb as wandb_run
from harness.tracking.loggers import Loggers, announce, make_loggers, update_summary

log = logging.getLogger(__name__)


@dataclass
class Run:
    """What `build` makes, for the steps after it."""

    cfg: DictConfig
    run_dir: Path
    datamodule: Any
    module: L.LightningModule
    trainer: L.Trainer
    callbacks: RunCallbacks
    loggers: Loggers
    meta: dict[str, Any]


def train(
    cfg: DictConfig,
    run_dir: str | Path,
    *,
    checked: bool = False,
    resume_from: Path | None = None,
    restart: bool | None = None,
    data: Data | None = None,
) -> dict[str, Any]:
    """Run one training job in run_dir; return what results.json holds. Its "status" is
    finished, diverged (a NaN/inf loss stopped it) or interrupted (SIGTERM, Ctrl-C; it resumes
    from its last checkpoint when run again); on any other error it is "failed" and the error
    propagates. A bad config or missing data raises before anything is written.

    checked=True: the caller has run the checks (harness.run.app does, once per command) and
    found the run starts from `resume_from` (None: afresh) and whether that fresh start is the
    `restart` of an attempt killed before its first checkpoint (decided before the caller
    recorded this command's config), and may pass the data it prepared (`prepare`)."""
    started = time.time()
    run_dir = Path(run_dir)
    if not checked:
        check_config(cfg)
        resume_from = resume_point(cfg.ckpt_path, run_dir, plain_config(cfg))
    if restart is None:
        restart = resume_from is None and restarts(run_dir)
    run = build(cfg, run_dir, resume_from, bool(restart), data or prepare(cfg))
    results: dict[str, Any] = {
        "status": "failed",
        "monitor": cfg.task.monitor,
        "mode": cfg.task.mode,
        **run.meta,
    }
    best_path: str | None = None  # as fit left it: testing "best" restores older callback state
    try:
        best_path = fit(run, resume_from, results)
        test(run, results)
        results["status"] = "finished"
    except (Diverged, SystemExit) as e:
        record_stop(run, e, results)
    finally:
        results = record(run, results, best_path, started)
    return results


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain values, secrets masked: what checkpoints and W&B hold."""
    return redact(OmegaConf.to_container(cfg, resolve=True))


@dataclass
class Data:
    """The run's datamodule, set up, and its shapes: what `prepare` makes."""

    datamodule: Any
    dims: dict[str, Any]


def prepare(cfg: DictConfig) -> Data:
    """Seed, then the datamodule set up, its sizes checked against the batch size and limits:
    the last check of a run, made before any of its files is written."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule, dims = build_data(cfg)
    check_sizes(cfg, datamodule, traits(datamodule, DataTraits).has_test_split)
    return Data(datamodule, dims)


def build(
    cfg: DictConfig, run_dir: Path, resume_from: Path | None, restart: bool, data: Data
) -> Run:
    config = plain_config(cfg)
    datamodule, dims = data.datamodule, data.dims
    with constructor_errors("model"):
        net = build_net(cfg, dims)
        module = build_module(cfg, net, dims)
    if resume_from is not None:
        check_fits(resume_from, module.state_dict(), config, cfg.ckpt_path or str(resume_from))
        log.info("resuming from %s", resume_from)
    n_params = sum(p.numel() for p in net.parameters())
    speed_up(net, compile=cfg.compile, channels_last=cfg.channels_last)
    meta = run_metadata(run_dir, resume_from, n_params)
    meta["name"] = run_name(config, meta["choices"])  # adamw-lr3e-4-s0: W&B, TensorBoard
    # The rows earlier attempts of this run logged. Those of the steps between the checkpoint and
    # the kill are replayed now; neither logger records them again.
    # A restart from step 0 (killed before its first checkpoint) replays every row it logged.
    earlier = logged_rows(run_dir / METRICS_FILE) if resume_from or restart else None
    if resume_from is not None:
        check_history(resume_from, run_dir, config, earlier)
    else:
        drop_earlier_best(run_dir)
    loggers = make_loggers(cfg, run_dir, config, meta, resume_from, earlier, restart=restart)
    with constructor_errors("callbacks"):
        extra_callbacks = build_callbacks(cfg)
    trainer, callbacks = build_trainer(cfg, run_dir, config, loggers.all, extra_callbacks)
    add_trainer_metadata(meta, cfg, trainer)
    announce(loggers, run_dir, trainer, meta)
    return Run(cfg, run_dir, datamodule, module, trainer, callbacks, loggers, meta)


def build_data(cfg: DictConfig) -> tuple[Any, dict[str, Any]]:
    """The datamodule, prepared and set up for fitting, and its shapes (datamodule.dims)."""
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    with constructor_errors(f"data={cfg.data._target_}"):  # e.g. a label_fraction too small
        datamodule.setup("fit")
        return datamodule, datamodule.dims


def fit(run: Run, resume_from: Path | None, results: dict[str, Any]) -> str:
    """Train (from resume_from when given); return the best checkpoint's path."""
    run.trainer.fit(run.module, datamodule=run.datamodule, ckpt_path=resume_from, weights_only=True)
    # What the checkpoint's run had logged, then what this fit logged (nothing, if it was done).
    results.update({**run.callbacks.fit_metrics.restored, **metrics_of(run.trainer)})
    return run.callbacks.best_checkpoint.best_model_path


def test(run: Run, results: dict[str, Any]) -> None:
    """Evaluate the best checkpoint on the test split (cfg.test), when the data has one."""
    cfg = run.cfg
    has_test = traits(run.datamodule, DataTraits).has_test_split
    if cfg.test and not has_test:
        log.info("data=%s has no test split: nothing to test", cfg.data._target_)
    if cfg.test and has_test and run.callbacks.best_checkpoint.best_model_path:
        run.trainer.test(
            run.module,
            datamodule=run.datamodule,
            # the path, not "best": "best" warns when there are several Checkpoint callbacks
            ckpt_path=run.callbacks.best_checkpoint.best_model_path,
            weights_only=True,
            verbose=False,
        )
        metrics = metrics_of(run.trainer)
        results.update({k: v for k, v in metrics.items() if k.startswith("test/")})


def record_stop(run: Run, stop: BaseException, results: dict[str, Any]) -> None:
    """A divergence or an interruption ends the run with its status; any other exit propagates."""
    if isinstance(stop, Diverged):
        results.update(
            metrics_of(run.trainer), status="diverged", diverged_at_step=stop.step, error=str(stop)
        )
        log.error("%s; the last good checkpoint is %s", stop, run.callbacks.last_checkpoint.path)
        return
    # Lightning turns SIGTERM into SIGTERMException and Ctrl-C into sys.exit(1), raised while the
    # KeyboardInterrupt is being handled.
    if not isinstance(stop, SIGTERMException) and not isinstance(
        stop.__context__, KeyboardInterrupt
    ):
        raise stop
    results.update(metrics_of(run.trainer), status="interrupted")


def record(run: Run, results: dict[str, Any], best_path: str | None, started: float) -> dict:
    """results.json (and W&B's summary) on rank zero, then close W&B; return the results."""
    trainer, callbacks = run.trainer, run.callbacks
    last = callbacks.last_checkpoint.path
    results.update(
        best=callbacks.best.best,
        **callbacks.best.scores(),  # the score: best/val/acc ... at the top level
        best_checkpoint=_relative(
            best_path or callbacks.best_checkpoint.best_model_path, run.run_dir
        ),
        last_checkpoint=_relative(last if Path(last).is_file() else None, run.run_dir),
        epochs=trainer.current_epoch,
        steps=trainer.global_step,
        runtime_s=round(time.time() - started, 3),
    )
    results = redact(results)
    if trainer.is_global_zero:  # every rank has the same (reduced) metrics; one writes them
        write_results(run.run_dir, results)
        update_summary(run.loggers, results)
        if run.loggers.tensorboard is not None:
            tensorboard.record_score(run.loggers.tensorboard, plain_config(run.cfg), results)
    wandb_run.finish(EXIT_STATUS[results["status"]], preempted=results["status"] == "interrupted")
    return results


def _relative(path: str | None, run_dir: Path) -> str | None:
    if not path:
        return None
    try:
        return str(Path(path).relative_to(run_dir))
    except ValueError:
        return path
