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
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from datamodules.errors import DatasetError
from harness import wandb_logger
from harness.build import build_callbacks, build_datamodule, build_module, build_net
from harness.callbacks import ConfigInCheckpoint, ValidateAtLastStep
from harness.checks import check_config, explained
from harness.errors import ConfigError, DataUnavailableError
from harness.results import BestMetrics, metrics_of, write_results

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


def resolve_ckpt_path(ckpt_path: str | None, run_dir: Path) -> Path | None:
    if ckpt_path is None:
        return None
    path = run_dir / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path={ckpt_path}: no checkpoint file at {path}")
    return path


def train(cfg: DictConfig, run_dir: str | Path) -> dict[str, Any]:
    """Run one training job in run_dir; return what results.json holds."""
    started = time.time()
    run_dir = Path(run_dir)
    check_config(cfg)
    resume_from = resolve_ckpt_path(cfg.ckpt_path, run_dir)
    config = OmegaConf.to_container(cfg, resolve=True)

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    try:
        datamodule.prepare_data()
        datamodule.setup("fit")
    except DatasetError as e:
        raise DataUnavailableError(str(e)) from None
    with explained(f"data={cfg.data._target_}"):
        dims = datamodule.dims
    with explained("model"):
        net = build_net(cfg, dims)
        module = build_module(cfg, net, dims)
    n_params = sum(p.numel() for p in net.parameters())

    choices, overrides = _choices(), _overrides()
    meta = {
        "params": n_params,
        "git": git_state(),
        "choices": choices,
        "overrides": overrides,
        "run_dir": str(run_dir),
    }
    ckpt_dir = run_dir / "checkpoints"
    loggers: list[Any] = []
    wandb_settings = cfg.logger.get("wandb")
    if wandb_settings is not None:
        wb = wandb_logger.make_wandb_logger(
            wandb_logger.labelled(
                OmegaConf.to_container(wandb_settings, resolve=True),
                wandb_logger.run_labels(choices, overrides),
            ),
            run_dir,
            wandb_logger.run_id(ckpt_dir, resume_from),
            {**config, "meta": meta},
        )
        if wb is not None:
            loggers.append(wb)
    if cfg.logger.get("csv"):
        loggers.append(CSVLogger(save_dir=str(run_dir), name="", version=""))

    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best",
        monitor=cfg.task.monitor,
        mode=cfg.task.mode,
        save_top_k=1,
        save_last=True,
        auto_insert_metric_name=False,
    )
    best = BestMetrics(cfg.task.monitor, cfg.task.mode)
    with explained("callbacks"):
        extra_callbacks = build_callbacks(cfg)
    trainer = L.Trainer(
        **cfg.trainer,
        logger=loggers or False,
        callbacks=[
            checkpoint,
            best,
            ConfigInCheckpoint(config),
            ValidateAtLastStep(),
            *extra_callbacks,
        ],
        default_root_dir=str(run_dir),
    )
    results: dict[str, Any] = {
        "status": "failed",
        "monitor": cfg.task.monitor,
        "mode": cfg.task.mode,
        **meta,
    }
    exit_code = 1
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        results.update(metrics_of(trainer))
        if cfg.test and checkpoint.best_model_path:
            trainer.test(
                module, datamodule=datamodule, ckpt_path="best", weights_only=True, verbose=False
            )
            results.update({k: v for k, v in metrics_of(trainer).items() if k.startswith("test/")})
        results["status"] = "finished"
        exit_code = 0
    except KeyboardInterrupt:
        results["status"] = "interrupted"
        raise
    finally:
        results.update(
            best=best.best,
            best_checkpoint=_relative(checkpoint.best_model_path, run_dir),
            last_checkpoint=_relative(checkpoint.last_model_path, run_dir),
            epochs=trainer.current_epoch,
            steps=trainer.global_step,
            runtime_s=round(time.time() - started, 3),
        )
        write_results(run_dir, results)
        for lg in loggers:
            if isinstance(lg, WandbLogger):
                lg.experiment.summary.update(
                    {k: v for k, v in results.items() if isinstance(v, (int, float, str))}
                )
        wandb_logger.finish(exit_code)
    return results


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
    """The option picked in each config group (data: digits, optim: adamw, callbacks: [a, b]...),
    Hydra's own groups and unpicked ones left out."""
    try:
        from hydra.core.hydra_config import HydraConfig

        picked = HydraConfig.get().runtime.choices
    except Exception:  # train() called outside a Hydra app
        return {}
    return {
        g: v if isinstance(v, str) else list(v)
        for g, v in picked.items()
        if v is not None and not g.startswith("hydra/")
    }


def run_from_hydra(cfg: DictConfig) -> None:
    """The body of train.py's @hydra.main: run, and turn expected failures into one clear line."""
    from hydra.core.hydra_config import HydraConfig

    from harness.cli import fail

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        train(cfg, run_dir)
    except (ConfigError, DataUnavailableError) as e:
        _remove_if_only_hydra_files(run_dir)
        fail(str(e))
    except KeyboardInterrupt:
        print(f"interrupted; the run directory is {run_dir}", file=sys.stderr)
        sys.exit(130)


def _remove_if_only_hydra_files(run_dir: Path) -> None:
    """A run that failed its checks leaves nothing behind but what Hydra wrote before it started."""
    import shutil

    names = {p.name for p in run_dir.iterdir()} if run_dir.is_dir() else set()
    if names <= {".hydra", "train.log"}:
        shutil.rmtree(run_dir, ignore_errors=True)
