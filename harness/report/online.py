"""An online sweep, read through W&B's public API: `wandb.Api().sweep("ENTITY/PROJECT/ID")`.

Only what the report needs is read: the sweep's config (its metric), and per run its config
(the sweep's parameters arrive flat, e.g. "optim.lr"; train.py adds meta.choices), its summary
(results.json's values, status and score included) and its history of the validation
metrics, the score (with perf/train_s) and train/loss.
"""

from __future__ import annotations

from typing import Any

from harness.numbers import is_number
from harness.report.records import RunRecord, SweepData, status_from_losses, task_name

# W&B run states -> ours, when the run's summary has no status (a run that died early).
STATES = {"finished": "finished", "running": "running", "crashed": "failed", "failed": "failed",
          "killed": "stopped", "preempted": "interrupted"}  # fmt: skip


def read_run(run: Any, parameters: dict[str, Any]) -> RunRecord:
    config, summary = dict(run.config), dict(run.summary)
    choices = (config.get("meta") or {}).get("choices") or {}
    params = {k: config[k] for k in parameters if k in config}
    optim = config.get("optim")
    lr = params.get("optim.lr", optim.get("lr") if isinstance(optim, dict) else None)
    history = [
        {k: float(v) for k, v in row.items() if is_number(v)}
        for row in run.scan_history()
        if any(k.startswith(("val/", "best/", "train/loss")) for k in row)
    ]
    for row in history:
        row.setdefault("step", row.get("trainer/global_step", row.get("_step", 0)))
    return RunRecord(
        name=run.id,
        task=task_name(choices, config),
        optimizer=str(choices.get("optim") or (optim if isinstance(optim, str) else "?")),
        params=params,
        lr=lr,
        seed=config.get("seed"),
        status=status_from_losses(
            summary.get("status") or STATES.get(run.state, run.state), history
        ),
        metrics={k: float(v) for k, v in summary.items() if "/" in k and is_number(v)},
        history=history,
        runtime_s=summary.get("runtime_s"),
        monitor=summary.get("monitor"),
        mode=summary.get("mode"),
    )


def read_wandb(path: str, api: Any = None) -> SweepData:
    if api is None:
        import wandb

        api = wandb.Api()
    sweep = api.sweep(path)
    config = dict(sweep.config)
    metric = config.get("metric") or {"name": "val/acc", "goal": "maximize"}
    parameters = config.get("parameters") or {}
    return SweepData(
        name=config.get("name") or path,
        metric=metric["name"],
        goal=metric.get("goal", "minimize"),
        runs=[read_run(r, parameters) for r in sweep.runs],
        source=f"W&B sweep {path}",
        command=f"wandb sweep FILE; wandb agent {path}",
    )
