"""Every run of a sweep is checked the way train.py checks its command line
(harness.config.command.check_command) before any run starts: a bad parameter is one error naming
the run, not a sweep of crashes."""

from __future__ import annotations

from collections.abc import Iterable

from harness.config.checks import warnings_only
from harness.config.command import check_overrides
from harness.errors import ConfigError


def check_runs(runs: Iterable[list[str]]) -> None:
    """Raise ConfigError for the first override list train.py would refuse, naming the run.

    A grid repeats a few sets of group choices many times over (the learning rates and seeds of
    each optimizer), and Hydra's composition costs ~0.2 s: each set of choices is composed once
    (the composer's cache), and each run's value overrides are applied to a copy."""
    bases: dict = {}
    for overrides in runs:
        try:
            with warnings_only("lightning.pytorch"):
                check_overrides(overrides, bases)
        except ConfigError as e:
            raise ConfigError(f"run {' '.join(overrides)}: {e}") from None
