"""The optimizer and the learning-rate schedule of a run, from its config: `optim` is a
`_partial_` of a torch.optim class (or optim.muon.MuonAdamW), `scheduler` one of optim.schedules.
LightningModules get the factories and call them on their parameter groups (optim.groups)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

OptimizerFactory = Callable[
    [Iterable[Any]], Any
]  # e.g. functools.partial(torch.optim.AdamW, lr=1e-3)
SchedulerFactory = Callable[..., Any]  # (optimizer, total_steps=N) -> torch scheduler

# Plain Python lists and dicts, never OmegaConf containers: they end up in optimizer state,
# which must load with torch.load(weights_only=True).
PLAIN = "all"


def build_optimizer_factory(cfg: Any) -> OptimizerFactory:
    from hydra.utils import instantiate

    return instantiate(cfg.optim, _convert_=PLAIN)


def build_scheduler_factory(cfg: Any) -> SchedulerFactory | None:
    from hydra.utils import instantiate

    return instantiate(cfg.scheduler, _convert_=PLAIN) if cfg.get("scheduler") else None
