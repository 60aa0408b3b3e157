"""What a run records about itself beside its metrics: the options it
picked and the overrides it was given (from the current HydraConfig), its size and where it is."""

from __future__ import annotations

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
