"""Whether the data, cut into batches and limited by trainer.limit_*_batches, leaves something to
train, validate and test: checked once the datamodule is set up (its sizes known), before any
file of the run is written. A length that cannot be known (a streamed loader) is not checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.errors import ConfigError
from harness.numbers import is_int


def limited(n: int, limit: Any) -> int:
    """Batches run of n when limited as Lightning does: an int is a count, a float a fraction."""
    if limit is None:
        return n
    return min(n, limit) if is_int(limit) else int(n * limit)


def _length(make_loader: Callable[[], Any]) -> int | None:
    try:
        return len(make_loader())
    except Exception:  # no such split, or a loader without a length
        return None


def check_sizes(cfg: Any, datamodule: Any, has_test: bool) -> None:
    """ConfigError when a split this run uses would run no batch, or when validation is due
    after more batches than an epoch has."""
    t, bs = cfg.trainer, cfg.data.get("batch_size")
    with_bs = f"data.batch_size={bs}" if bs is not None else "this data"
    splits = [("train", "train_dataloader"), ("val", "val_dataloader")]
    splits += [("test", "test_dataloader")] if cfg.test and has_test else []
    for split, fn in splits:
        n = _length(getattr(datamodule, fn))
        if n is None:
            continue
        limit = t.get(f"limit_{split}_batches")
        runs = limited(n, limit)
        if runs == 0:
            verb = {"train": "train", "val": "validate", "test": "test"}[split]
            why = f"{with_bs} gives {n} {split} batches" + (
                f" and trainer.limit_{split}_batches={limit} keeps {runs}" if n else ""
            )
            fix = "test=false, " if split == "test" else ""
            raise ConfigError(
                f"nothing to {verb}: {why} (a training batch is whole: a last incomplete one is "
                f"dropped); use {fix}a smaller data.batch_size or a larger limit"
            )
        vci = t.get("val_check_interval")
        if split == "train" and is_int(vci) and t.get("check_val_every_n_epoch") and vci > runs:
            raise ConfigError(
                f"trainer.val_check_interval={vci} is more than the {runs} training batches of an "
                f"epoch ({with_bs}): at most {runs}, or a fraction of an epoch such as 0.5"
            )
