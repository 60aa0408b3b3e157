"""Instantiate the parts of a run from its config, the Trainer and its callbacks last. Shapes (channels, classes, vocabulary) flow
from the datamodule's `dims` to whichever constructor names them, so no config repeats them."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from harness.errors import ConfigError
from harness.run import requeue
from harness.rundir.files import CHECKPOINT_DIR, LAST
from optim.optimizer import (
    PLAIN,  # plain lists and dicts: hyperparameters load with weights_only=True
    build_optimizer_factory,
    build_scheduler_factory,
)


def target_class(node: DictConfig) -> type:
    return get_class(node._target_)


def constructor_kwargs(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `values` that cls's constructor takes by name."""
    params = inspect.signature(cls).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return dict(values)
    return {k: v for k, v in values.items() if k in params}


def build_datamodule(cfg: DictConfig) -> Any:
    return instantiate(cfg.data, _convert_=PLAIN)


def build_net(cfg: DictConfig, dims: Mapping[str, Any]) -> Any:
    """The network; its encoder loaded from cfg.pretrained and frozen if cfg.finetune=linear."""
    net = instantiate(
        cfg.model, _convert_=PLAIN, **constructor_kwargs(target_class(cfg.model), dims)
    )
    if cfg.get("pretrained"):
        from models.encoder import load_encoder

        state, trained_with = read_checkpoint(cfg.pretrained)
        try:
            load_encoder(net, state)
        except ValueError as e:
            raise ConfigError(
                f"pretrained={cfg.pretrained} ({trained_with}) does not fit "
                f"model={cfg.model._target_} on this data: {e}"
            ) from None
    if cfg.get("finetune") == "linear":
        from models.encoder import freeze_encoder

        freeze_encoder(net)
    return net


def read_checkpoint(path: str) -> tuple[dict[str, Any], str]:
    """(the network's state dict, what the checkpoint's run trained) from a harness checkpoint."""
    from harness.run.resume import load_checkpoint

    ckpt = load_checkpoint(Path(path), f"pretrained={path}")
    if not isinstance(ckpt.get("state_dict"), dict):
        raise ConfigError(f"pretrained={path} is not a readable checkpoint (no state_dict)")
    state = {
        k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")
    }
    config = ckpt.get("config") or {}
    model = config.get("model", {}).get("_target_", "an unknown model")
    task = config.get("task", {}).get("module", {}).get("_target_", "an unknown task")
    return state, f"{model} trained by {task}"


def build_module(cfg: DictConfig, net: Any, dims: Mapping[str, Any]) -> Any:
    cls = target_class(cfg.task.module)
    return instantiate(
        cfg.task.module,
        _convert_=PLAIN,
        net=net,
        optimizer=build_optimizer_factory(cfg),
        scheduler=build_scheduler_factory(cfg),
        monitor=cfg.task.monitor,
        decay_norm_and_bias=cfg.decay_norm_and_bias,
        **constructor_kwargs(cls, dims),
    )


def build_callback(node: DictConfig) -> Any:
    return instantiate(node, _convert_=PLAIN)


def build_callbacks(cfg: DictConfig) -> list[Any]:
    """The optional callbacks of the `callbacks` group; an entry set to null is off."""
    return [
        build_callback(node) for node in (cfg.get("callbacks") or {}).values() if node is not None
    ]


def speed_up(net: Any, *, compile: bool, channels_last: bool) -> None:
    """Top-level switches, not model.* keys (those are the network's constructor arguments): they
    change how the network runs, never what it computes. In place, so parameter names, and with
    them checkpoints, stay the same."""
    import torch

    if channels_last:  # 4-d weights in NHWC; convolutions then output NHWC too (tensor cores)
        net.to(memory_format=torch.channels_last)
    if compile:  # nn.Module.compile: torch.compile on the forward; state_dict keys unchanged
        net.compile()


@dataclass
class RunCallbacks:
    """The callbacks the recipe reads after fitting."""

    best_checkpoint: Any  # ModelCheckpoint: RUN_DIR/checkpoints/best.ckpt, by task.monitor
    last_checkpoint: Any  # LastCheckpoint: RUN_DIR/checkpoints/last.ckpt, for resuming
    best: Any  # BestMetrics: the validation metrics at the best check
    fit_metrics: Any  # FitMetrics: the metrics a resumed run's checkpoint had logged


def build_trainer(
    cfg: DictConfig, run_dir: Path, config: dict[str, Any], loggers: list[Any], extra: list[Any]
) -> tuple[Any, RunCallbacks]:
    """The Trainer with every run's callbacks (harness.run.callbacks), then `extra` (the
    callbacks group's), then the checkpoints, and whole-file checkpoint writes."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from harness.run import callbacks as cb
    from harness.run.best import BestMetrics
    from harness.run.checkpoint_io import AtomicCheckpointIO
    from harness.run.console import ProgressBar

    ckpt_dir = run_dir / CHECKPOINT_DIR
    kept = RunCallbacks(
        best_checkpoint=ModelCheckpoint(
            dirpath=ckpt_dir,
            filename="best",
            monitor=cfg.task.monitor,
            mode=cfg.task.mode,
            save_top_k=1,
            auto_insert_metric_name=False,
        ),
        last_checkpoint=cb.LastCheckpoint(ckpt_dir / LAST, cfg.checkpoint_every_n_steps),
        best=BestMetrics(cfg.task.monitor, cfg.task.mode),
        fit_metrics=cb.FitMetrics(),
    )
    trainer = L.Trainer(
        **cfg.trainer,
        logger=loggers or False,
        callbacks=[
            cb.StopOnNonFiniteLoss(),
            cb.RandomState(),
            cb.MetricStates(),
            cb.LoaderPosition(),
            kept.fit_metrics,
            kept.best,
            cb.ConfigInCheckpoint(config),
            cb.ValidateAtLastStep(),
            *([ProgressBar()] if cfg.trainer.get("enable_progress_bar", True) else []),
            *extra,
            kept.best_checkpoint,  # Lightning runs checkpoint callbacks last, in this order
            kept.last_checkpoint,
        ],
        plugins=[AtomicCheckpointIO(), *requeue.cluster_plugins()],
        default_root_dir=str(run_dir),
    )
    skip_unused_hooks(trainer.callbacks)  # with those Lightning added (summary, checkpoints)
    return trainer, kept


# Per-batch hooks nobody overrides, skipped. Lightning calls each per-batch hook of every
# callback whether the callback overrides it or not (trainer/call.py `_call_callback_hooks`: a
# profiler context and the callback's `state_key` per call, ~1.2 us), six hooks a training step over
# some 16 callbacks; it skips a hook that is not callable. A hook a callback's class does not
# override is therefore set to None on the instance: the class keeps its hooks, and nothing a
# callback does changes.
PER_BATCH = (
    "on_train_batch_start",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_train_batch_end",
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_test_batch_start",
    "on_test_batch_end",
    "on_predict_batch_start",
    "on_predict_batch_end",
)


def skip_unused_hooks(callbacks: Iterable[Any]) -> None:
    """Per-batch hooks nobody overrides, skipped (PER_BATCH above says why)."""
    import lightning as L

    for callback in callbacks:
        for hook in PER_BATCH:
            inherited = getattr(type(callback), hook, None) is getattr(L.Callback, hook)
            if inherited and hook not in vars(callback):  # not set on the instance either
                setattr(callback, hook, None)  # Lightning: `if callable(fn)`, else skipped
