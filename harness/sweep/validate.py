"""Every run of a sweep is checked the way train.py checks its command line
(harness.config.compose.check_overrides) before any run starts: a bad parameter is one error naming the run,
not a sweep of crashes."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from harness.config.checks import quiet
from harness.config.compose import CONF_DIR, _split, check_overrides, check_types
from harness.errors import ConfigError


def check_runs(runs: Iterable[list[str]]) -> None:
    """Raise ConfigError for the first override list train.py would refuse, naming the run.

    A grid repeats a few sets of group choices many times over (the learning rates and seeds of
    each optimizer), and Hydra's composition costs ~0.2 s: each set of choices is composed once,
    and a run's value overrides are applied to a copy by Hydra's own override code (what compose
    does after loading the files). A run that fails is checked again by check_overrides itself,
    whose error is the one train.py would print."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf, open_dict

    from harness.config.checks import check_config

    parser = OverridesParser.create()
    bases: dict[tuple[str, ...], object] = {}  # composed config of each set of group choices
    for overrides in runs:
        choices, values = _split(overrides)
        try:
            with (
                initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"),
                quiet("lightning.pytorch"),
            ):
                if tuple(choices) not in bases:
                    bases[tuple(choices)] = compose("config", overrides=choices, return_hydra_config=True)  # fmt: skip
                cfg = copy.deepcopy(bases[tuple(choices)])
                ConfigLoaderImpl._apply_overrides_to_config(parser.parse_overrides(values), cfg)
                HydraConfig.instance().set_config(cfg)
                check_types(cfg, bases[tuple(choices)], values)
                with open_dict(cfg):
                    del cfg["hydra"]
                OmegaConf.resolve(cfg)
                check_config(cfg)
        except Exception as fast:
            try:
                check_overrides(overrides)
            except ConfigError as e:
                raise ConfigError(f"run {' '.join(overrides)}: {e}") from None
            raise ConfigError(f"run {' '.join(overrides)}: {fast}") from None
