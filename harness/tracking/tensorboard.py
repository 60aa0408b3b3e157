"""TensorBoard for a run (`logger=tensorboard`, or `logger=[default,tensorboard]` beside W&B and
CSV): event files in RUN_DIR/tensorboard/, so `tensorboard --logdir runs/` shows a sweep's runs
side by side. Scalars go under their logged names (train/loss, val/acc), pictures as images
(diagnostics.publish), and at the end the run's hyperparameters with its score (best/MONITOR),
which the HParams tab compares across runs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from harness.metrics_log import Replayed

LOG_DIR = "tensorboard"  # RUN_DIR/tensorboard/events.out.tfevents.*
# Config subtrees left out of the HParams table: where files are, how progress is shown.
NOT_HPARAMS = ("logger", "callbacks", "meta")


class RunTensorBoardLogger(TensorBoardLogger):
    """Lightning's TensorBoardLogger in RUN_DIR/tensorboard/ (no version_N folders: a resumed run
    adds an events file beside the first), skipping the rows a resumed run replays."""

    def __init__(
        self, run_dir: str | Path, replayed: Replayed | None = None, flush_secs: int = 30
    ) -> None:
        # default_hp_metric off: no placeholder hp_metric=-1; the real score comes at the end.
        super().__init__(
            save_dir=str(run_dir), name=LOG_DIR, version="", default_hp_metric=False,
            flush_secs=flush_secs,
        )  # fmt: skip
        self._replayed = replayed
        self.tags: set[str] = set()  # scalar names logged so far

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self._replayed is not None and self._replayed.skip(step, metrics):
            return
        self.tags.update(metrics)
        super().log_metrics(metrics, step)


def make_tensorboard_logger(
    settings: Mapping[str, Any] | None, run_dir: Path, replayed: Replayed | None = None
) -> RunTensorBoardLogger | None:
    """The logger cfg.logger.tensorboard asks for (None: none)."""
    if settings is None or settings is False:
        return None
    settings = dict(settings) if isinstance(settings, Mapping) else {}
    return RunTensorBoardLogger(run_dir, replayed, flush_secs=int(settings.get("flush_secs", 30)))


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

    exp, ssi, sei = hparams(hparams_of(config), metrics)
    writer = logger.experiment._get_file_writer()
    for summary in (exp, ssi, sei):
        writer.add_summary(summary, step)
    logger.experiment.flush()
    return metrics
