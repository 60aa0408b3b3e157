"""Every run of a sweep is checked the way train.py checks its command line (compose, types,
harness.checks) before any run starts: a bad parameter is one error, not a sweep of crashes."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator

from harness.cli import CONF_DIR, _split, check_types, explain_composition_error
from harness.errors import ConfigError


def check_runs(runs: Iterable[list[str]]) -> None:
    """Raise ConfigError for the first override list train.py would refuse, naming the run.

    Hydra composes each set of group choices once (about 0.2 s each); a run's value overrides
    are then applied to a copy by Hydra's own override code, so a grid of learning rates and
    seeds costs milliseconds a run. The result is the config Hydra would compose."""
    import copy

    from hydra import compose, initialize_config_dir
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf import OmegaConf, open_dict

    from harness.checks import check_config

    parser = OverridesParser.create()
    bases: dict[tuple[str, ...], object] = {}  # composed config of each set of group choices
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"), _quiet():
        for overrides in runs:
            choices, values = _split(overrides)
            try:
                try:
                    if tuple(choices) not in bases:
                        bases[tuple(choices)] = compose(
                            "config", overrides=choices, return_hydra_config=True
                        )
                    base = bases[tuple(choices)]
                    cfg = copy.deepcopy(base)
                    ConfigLoaderImpl._apply_overrides_to_config(parser.parse_overrides(values), cfg)
                except HydraException as e:
                    raise ConfigError(explain_composition_error(e, overrides)) from None
                except Exception as e:  # a malformed override string
                    raise ConfigError(str(e).replace("\n", " ").strip()) from None
                HydraConfig.instance().set_config(cfg)
                check_types(cfg, base, values)
                with open_dict(cfg):
                    del cfg["hydra"]
                OmegaConf.resolve(cfg)
                check_config(cfg)
            except ConfigError as e:
                raise ConfigError(f"run {' '.join(overrides)}: {e}") from None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    log = logging.getLogger("lightning.pytorch")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)
