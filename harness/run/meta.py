"""What a run records about itself beside its metrics: the options it
picked and the overrides it was given (from the current HydraConfig), its size and where it is, and its readable name.

The name comes from its recipe: `adamw-lr3e-4-s0` (the optimizer option, the learning rate, the
seed). W&B shows it in every table and legend instead of a random `dainty-sun-12`;
logger.wandb.name replaces it. The sweep runner and the reports read it from results.json
(meta.name), so a run has one name everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.rundir.provenance import provenance
from harness.rundir.secrets import redact


def run_overrides() -> list[str]:
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except Exception:  # train() called outside a Hydra app (tests, notebooks)
        return []


def run_choices() -> dict[str, Any]:
    """The option picked in each config group ({"data": "digits", "optim": "adamw", ...}): how a
    report names a run's task and optimizer (several options share one class: sgd, momentum)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        choices = HydraConfig.get().runtime.choices
    except Exception:  # train() called outside a Hydra app
        return {}
    return {
        str(k): v if isinstance(v, str) else list(v)  # callbacks: a list of options
        for k, v in choices.items()
        if v is not None and not str(k).startswith("hydra")
    }


def run_metadata(run_dir: Path, resume_from: Path | None, n_params: int) -> dict[str, Any]:
    """results.json's and W&B's "meta": filled in further once the Trainer knows its devices."""
    return {
        "params": n_params,
        **provenance(run_dir),  # command, versions, hardware, git (and RUN_DIR/code.diff)
        "choices": run_choices(),
        "overrides": redact(run_overrides()),
        "run_dir": str(run_dir),
        "resumed_from": str(resume_from) if resume_from else None,
    }


def add_problem_metadata(meta: dict[str, Any], cfg: Any) -> None:
    """The test problem the run trains on: its experiment option and definition hash
    (harness.suite), which the report checks against baselines'."""
    from harness.suite import problem_record

    meta["problem"] = problem_record(cfg, meta.get("choices", {}).get("experiment"))


def add_trainer_metadata(meta: dict[str, Any], cfg: Any, trainer: Any) -> None:
    """Known once the Trainer has resolved devices and nodes. data.batch_size is per device."""
    add_problem_metadata(meta, cfg)
    meta["world_size"] = trainer.world_size
    if isinstance(cfg.data.get("batch_size"), int):
        meta["global_batch_size"] = (
            cfg.data.batch_size * trainer.world_size * trainer.accumulate_grad_batches
        )


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
