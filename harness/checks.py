"""Checks a composed config before anything runs: value ranges of the knobs people sweep, the
model fitting the data, and a dry build of each part by its own constructor (which knows its own
rules best: torch.optim rejects a negative lr, Lightning an unknown precision). Every failure is
one ConfigError naming the key, the bad value and what is allowed."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from harness.build import (
    build_callback,
    build_datamodule,
    build_optimizer_factory,
    build_scheduler_factory,
    target_class,
)
from harness.errors import ConfigError


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# key -> (test, what is allowed). Missing keys are skipped: not every optimizer has momentum.
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    "optim.lr": (lambda v: _is_number(v) and v > 0, "a positive number"),
    "optim.weight_decay": (lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    "optim.momentum": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "trainer.max_epochs": (
        lambda v: v is None or (_is_int(v) and v >= -1),
        "an integer >= 1 (or -1: no limit)",
    ),
    "trainer.max_steps": (lambda v: _is_int(v) and v >= -1, "an integer >= 1 (or -1: no limit)"),
    "trainer.accumulate_grad_batches": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "trainer.gradient_clip_val": (
        lambda v: v is None or (_is_number(v) and v > 0),
        "a positive number or null",
    ),
    "trainer.log_every_n_steps": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
}


def _select(cfg: DictConfig, key: str) -> tuple[bool, Any]:
    sentinel = object()
    value = OmegaConf.select(cfg, key, default=sentinel)
    return value is not sentinel, value


def check_values(cfg: DictConfig) -> None:
    for key, (ok, allowed) in RULES.items():
        present, value = _select(cfg, key)
        if present and not ok(value):
            raise ConfigError(f"{key} must be {allowed}, got {value!r}")


def check_fit(cfg: DictConfig) -> None:
    """The model takes the kind of input the data gives (images, tokens)."""
    data_cls, model_cls = target_class(cfg.data), target_class(cfg.model)
    data_kind = getattr(data_cls, "input_kind", None)
    model_kind = getattr(model_cls, "input_kind", None)
    if data_kind != model_kind:
        data_name, model_name = _choice(cfg, "data"), _choice(cfg, "model")
        raise ConfigError(
            f"model={model_name} takes {model_kind} inputs but data={data_name} gives {data_kind}s. "
            f"Models that take {data_kind}s: {', '.join(models_for(data_kind)) or 'none'}."
        )


def _choice(cfg: DictConfig, group: str) -> str:
    with contextlib.suppress(Exception):
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get().runtime.choices[group]
    return str(cfg[group].get("_target_", group))


def models_for(kind: str | None) -> list[str]:
    """Options of the model group whose network takes `kind` inputs."""
    from pathlib import Path

    from hydra.utils import get_class

    names = []
    for path in sorted((Path(__file__).parent.parent / "conf" / "model").glob("*.yaml")):
        target = OmegaConf.load(path).get("_target_")
        with contextlib.suppress(Exception):
            if target and getattr(get_class(target), "input_kind", None) == kind:
                names.append(path.stem)
    return names


@contextlib.contextmanager
def explained(where: str) -> Iterator[None]:
    """Turn a constructor's ValueError/TypeError into a ConfigError that says where it came from."""
    try:
        yield
    except ConfigError:
        raise
    except InstantiationException as e:
        cause = e.__cause__ or e
        raise ConfigError(f"{where}: {cause}") from None
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{where}: {e}") from None


def dry_build(cfg: DictConfig) -> None:
    """Build each part that can be built without data, so its own checks run now."""
    import torch

    with explained(f"data={_choice(cfg, 'data')}"):
        build_datamodule(cfg)
    with explained(f"optim={_choice(cfg, 'optim')} ({cfg.optim._target_})"):
        optimizer = build_optimizer_factory(cfg)([torch.nn.Parameter(torch.zeros(2, 2))])
    with explained(f"scheduler={_choice(cfg, 'scheduler')}"):
        factory = build_scheduler_factory(cfg)
        if factory is not None:
            factory(optimizer, total_steps=100)
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is not None:
            with explained(f"callbacks.{name}"):
                build_callback(node)
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    with explained("trainer"), _quiet("lightning.pytorch"):
        try:
            L.Trainer(**cfg.trainer, logger=False, enable_checkpointing=False)
        except MisconfigurationException as e:
            raise ValueError(str(e)) from None


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    log = logging.getLogger(logger_name)
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError on the first problem found."""
    check_values(cfg)
    check_fit(cfg)
    dry_build(cfg)
