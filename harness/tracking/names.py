"""A run's readable name, from its recipe: `adamw-lr3e-4-s0` (the optimizer option, the learning
rate, the seed). W&B shows it in every table and legend instead of a random `dainty-sun-12`;
logger.wandb.name replaces it. The sweep runner and the reports read it from results.json
(meta.name), so a run has one name everywhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NAME_MAX = 128  # characters W&B shows


def short_number(x: float) -> str:
    """3e-4, 1e-3, 3.16e-3, 0.1, 0.03, 1, 10: the shortest exact-looking form of a rate."""
    if x == 0:
        return "0"
    if abs(x) < 0.01:
        mantissa, exponent = f"{x:.2e}".split("e")  # 3.16e-03
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{x:.3g}"


def run_name(config: Mapping[str, Any], choices: Mapping[str, Any]) -> str:
    """OPTIM-lrLR-sSEED from a resolved config and its group choices (the optimizer's class
    name when no option was picked, as for train() called outside Hydra)."""
    optim = config.get("optim") or {}
    option = choices.get("optim") if isinstance(choices.get("optim"), str) else None
    if option is None:
        option = str(optim.get("_target_", "run")).rsplit(".", 1)[-1].lower()
    parts = [option]
    lr = optim.get("lr")
    if isinstance(lr, (int, float)) and not isinstance(lr, bool):
        parts.append(f"lr{short_number(float(lr))}")
    if config.get("seed") is not None:
        parts.append(f"s{config['seed']}")
    return "-".join(parts)[:NAME_MAX]


def named(
    settings: Mapping[str, Any], config: Mapping[str, Any], choices: Mapping[str, Any]
) -> dict[str, Any]:
    """W&B settings with `name` filled in from the recipe unless logger.wandb.name is set."""
    return {**settings, "name": settings.get("name") or run_name(config, choices)}
