"""Instantiate the parts of a run from its config. Shapes (channels, classes, vocabulary) flow
from the datamodule's `dims` to whichever constructor names them, so no config repeats them."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

# Plain Python lists and dicts, never OmegaConf containers: they end up in optimizer state and
# hyperparameters, which must load with torch.load(weights_only=True).
PLAIN = "all"


def target_class(node: DictConfig) -> type:
    return get_class(node._target_)


def accepted(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `values` that cls's constructor takes by name."""
    params = inspect.signature(cls).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return dict(values)
    return {k: v for k, v in values.items() if k in params}


def build_datamodule(cfg: DictConfig) -> Any:
    return instantiate(cfg.data, _convert_=PLAIN)


def build_net(cfg: DictConfig, dims: Mapping[str, Any]) -> Any:
    return instantiate(cfg.model, _convert_=PLAIN, **accepted(target_class(cfg.model), dims))


def build_optimizer_factory(cfg: DictConfig) -> Any:
    return instantiate(cfg.optim, _convert_=PLAIN)


def build_scheduler_factory(cfg: DictConfig) -> Any:
    return instantiate(cfg.scheduler, _convert_=PLAIN) if cfg.get("scheduler") else None


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
        **accepted(cls, dims),
    )


def build_callback(node: DictConfig) -> Any:
    return instantiate(node, _convert_=PLAIN)


def build_callbacks(cfg: DictConfig) -> list[Any]:
    """The optional callbacks of the `callbacks` group; an entry set to null is off."""
    return [
        build_callback(node) for node in (cfg.get("callbacks") or {}).values() if node is not None
    ]
