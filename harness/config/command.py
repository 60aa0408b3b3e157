"""A command line's overrides -> a checked config, or one ConfigError naming what is wrong.

Composed once (harness.config.compose), checked once: unknown options and keys, types, value
ranges, the model fitting the data, a dry build of each part. train.py, the sweep runner's run
checks and tests all come through here.

Imports nothing heavy at module level: `python train.py --help` must stay fast.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from harness.config.compose import (
    compose_with_defaults,
    explain_composition_error,
    override_key,
    split_overrides,
    unparsable,
)
from harness.errors import ConfigError
from harness.numbers import is_number


@dataclass
class Checked:
    cfg: Any  # resolved, without the hydra node: what train() runs
    composed: Any  # as composed (unresolved, hydra node included): what RUN_DIR/.hydra/ records


def check_types(cfg: Any, base: Any, value_overrides: list[str]) -> None:
    """An override keeps the type of the value it replaces: a number stays a number, a flag a flag.
    (Strings are not checked: some keys take a string or a number, as trainer.precision does.)"""
    from omegaconf import OmegaConf

    missing = object()
    for o in value_overrides:
        key = override_key(o)
        old = OmegaConf.select(base, key, default=missing)
        new = OmegaConf.select(cfg, key, default=missing)
        if old is missing or new is missing or old is None or new is None:
            continue
        if isinstance(old, bool) and not isinstance(new, bool):
            raise ConfigError(f"{key} must be true or false, got {new!r}")
        if is_number(old) and not is_number(new):
            raise ConfigError(f"{key} must be a number (default {old!r}), got {new!r}")


def task_config(composed: Any) -> Any:
    """The run's own config: the composed one without its hydra node, resolved (with the hydra
    node set as the current HydraConfig, so ${hydra:runtime.choices...} resolve)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    HydraConfig.instance().set_config(composed)
    cfg = copy.deepcopy(composed)
    with _as_config_error(), _job_environment(composed):
        with open_dict(cfg):
            del cfg["hydra"]
        OmegaConf.resolve(cfg)
    return cfg


@contextlib.contextmanager
def _job_environment(composed: Any) -> Iterator[None]:
    """hydra.job.env_set in the environment meanwhile, as Hydra sets it before a job's config is
    read (${oc.env:DATA_DIR} sees it); put back after, so a sweep's checks leave no trace."""
    from omegaconf import OmegaConf

    env_set = OmegaConf.select(composed, "hydra.job.env_set", default=None) or {}
    saved = {str(k): os.environ.get(str(k)) for k in env_set}
    os.environ.update({str(k): str(v) for k, v in env_set.items()})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _as_config_error() -> Iterator[None]:
    """An OmegaConf error while resolving (e.g. ${oc.env:NAME} with NAME unset) as a ConfigError."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        yield
    except OmegaConfBaseException as e:
        where = f"{e.full_key}: " if getattr(e, "full_key", None) else ""
        raise ConfigError(where + str(e).splitlines()[0]) from None


def check_command(overrides: list[str], bases: dict | None = None) -> Checked:
    """Compose the config these overrides make (as train.py runs it) and run every check on it.
    `bases` caches compositions of group choices across calls (a sweep's runs share them)."""
    from hydra.errors import HydraException, OverrideParseException

    from harness.config.checks import check_config

    try:
        composed, base = compose_with_defaults(overrides, bases)
    except OverrideParseException as e:
        raise ConfigError(f"{unparsable(overrides)}: {e}".replace("\n", " ").strip()) from None
    except HydraException as e:
        raise ConfigError(explain_composition_error(e, overrides)) from None
    except Exception as e:  # anything else composing raises is still about the overrides
        raise ConfigError(str(e).replace("\n", " ").strip()) from None
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().set_config(composed)  # ${hydra:...} resolve while checking types
    _, values = split_overrides(overrides)
    with _as_config_error():
        check_types(composed, base, values)
    cfg = task_config(composed)
    check_config(cfg)
    return Checked(cfg, composed)


def check_overrides(overrides: list[str], bases: dict | None = None) -> Any:
    """The checked, resolved config (without the hydra node) these overrides make; ConfigError
    naming the bad value and what is allowed. Sweep runners call it on each run's overrides."""
    return check_command(overrides, bases).cfg
