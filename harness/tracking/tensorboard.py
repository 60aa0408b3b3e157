"""TensorBoard for a run (`logger=tensorboard`, or `logger=[default,tensorboard]` beside W&B and
CSV): event files in RUN_DIR/tensorboard/NAME/ (NAME: the run's name, adamw-lr3e-4-s0), so
`tensorboard --logdir runs/` shows a sweep's runs side by side, each under a readable name. Scalars go under their logged names (train/loss, val/acc), pictures as images
(diagnostics.publish), and at the end the run's hyperparameters with its score (best/MONITOR),
which the HParams tab compares across runs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

LOG_DIR = "tensorboard"  # RUN_DIR/tensorboard/NAME/events.out.tfevents.*
# Config subtrees left out of the HParams table: where files are, how progress is shown.
NOT_HPARAMS = ("logger", "callbacks", "meta")


class RunTensorBoardLogger(TensorBoardLogger):
    """Lightning's TensorBoardLogger in RUN_DIR/tensorboard/NAME/ (no version_N folders), with
    every row on disk once logged, as metrics.csv has it.

    A resumed run adds an events file beside the first, starting with a purge at the checkpoint's
    step: TensorBoard then drops what the killed attempt logged after its checkpoint, and the
    resumed run logs those steps again, so every step is shown once."""

    def __init__(self, run_dir: str | Path, name: str = "", purge_step: int | None = None) -> None:
        # default_hp_metric off: no placeholder hp_metric=-1; the real score comes at the end.
        super().__init__(save_dir=str(run_dir), name=LOG_DIR, version=name.replace("/", "_"),
                         default_hp_metric=False, purge_step=purge_step)  # fmt: skip
        self.tags: set[str] = set()  # scalar names logged so far

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.tags.update(metrics)
        super().log_metrics(metrics, step)
        self.experiment.flush()  # a kill loses no row (the writer would wait up to 2 minutes)


def make_tensorboard_logger(
    settings: Mapping[str, Any] | None,
    run_dir: Path,
    resume_from: Path | None = None,
    name: str = "",
) -> RunTensorBoardLogger | None:
    """The logger cfg.logger.tensorboard asks for (None: none); resume_from: the checkpoint this
    run resumes from; name: the run's (harness.run.meta.run_name)."""
    if settings is None or settings is False:
        return None
    purge_step = None
    if resume_from is not None:
        from harness.run.resume import load_checkpoint

        purge_step = int(load_checkpoint(Path(resume_from), "resume").get("global_step", 0))
    return RunTensorBoardLogger(run_dir, name, purge_step)


def hparams_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config as flat `a/b` keys of numbers, strings and booleans (what the HParams tab shows),
    without the subtrees that do not change what is computed."""
    out: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, f"{prefix}{k}/")
        elif isinstance(node, (bool, int, float, str)):
            out[prefix[:-1]] = node
        else:  # None, lists: shown as text
            out[prefix[:-1]] = str(node)

    walk({k: v for k, v in config.items() if k not in NOT_HPARAMS}, "")
    return out


def record_score(
    logger: RunTensorBoardLogger, config: Mapping[str, Any], results: Mapping[str, Any]
) -> dict[str, float]:
    """Write the run's hyperparameters with its score, best/MONITOR (the monitored validation
    metric at its best check), and the final test metrics, once, at the end of the run; return
    the metrics written. A run with no validation check has no score: nothing is written."""
    monitor = results.get("monitor")
    best = results.get("best") or {}
    if not monitor or not isinstance(best.get(monitor), (int, float)):
        return {}
    metrics = {f"best/{monitor}": float(best[monitor])}
    metrics.update(
        {k: float(v) for k, v in results.items() if k.startswith("test/") and isinstance(v, (int, float))}
    )  # fmt: skip
    step = int(results.get("steps") or 0)
    # A metric is a scalar series of the same name; those not logged already are logged now.
    new = {k: v for k, v in metrics.items() if k not in logger.tags}
    if new:
        logger.log_metrics(new, step)
    from torch.utils.tensorboard.summary import hparams

    # the options picked (optim: momentum, not only its class torch.optim.SGD) lead the table
    picked = {
        f"choice/{k}": v for k, v in (results.get("choices") or {}).items() if isinstance(v, str)
    }
    exp, ssi, sei = hparams({**picked, **hparams_of(config)}, metrics)
    writer = logger.experiment._get_file_writer()
    for summary in (exp, ssi, sei):
        writer.add_summary(summary, step)
    logger.experiment.flush()
    return metrics
