"""Checkpoints as W&B model artifacts (`logger.wandb.log_model=false|best|all`), as Lightning's
WandbLogger(log_model=...) logs them: the artifact `model-RUN_ID`, file model.ckpt, metadata with
the checkpoint's score (the monitored metric) and the ModelCheckpoint settings (monitor, mode),
aliases `best` and `latest`.

best: the best checkpoint, once, when training ends (not after a divergence or an interruption).
all:  every new best checkpoint while training (each a new version; `best` moves to the newest).

W&B copies an artifact's files into a staging folder when they are added, and uploads from there
(at once online; at `wandb sync` offline). The staging folder is RUN_DIR/wandb/artifacts/staging,
not W&B's per-user data folder, so an offline run carries its checkpoints with it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# logger.wandb.log_model -> Lightning's log_model
LOG_MODEL: dict[Any, Any] = {False: False, "best": True, "all": "all"}
ALLOWED = "false, best or all"


def log_model_arg(value: Any) -> bool | str:
    """Lightning's log_model for a logger.wandb.log_model value (None: false)."""
    if value is None or value is False:
        return False
    if value not in ("best", "all"):  # `true` is refused: best or all says which
        raise ValueError(f"logger.wandb.log_model must be {ALLOWED}, got {value!r}")
    return LOG_MODEL[value]


@contextlib.contextmanager
def staged_in(folder: Path) -> Iterator[None]:
    """W&B's artifact staging (WANDB_DATA_DIR/artifacts/staging) in `folder` meanwhile."""
    old = os.environ.get("WANDB_DATA_DIR")
    os.environ["WANDB_DATA_DIR"] = str(folder)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("WANDB_DATA_DIR", None)
        else:
            os.environ["WANDB_DATA_DIR"] = old


class CheckpointArtifacts:
    """Mixed into a WandbLogger: its checkpoint artifacts are staged in the run's own folder."""

    save_dir: str | None

    def _scan_and_log_checkpoints(self, checkpoint_callback: Any) -> None:
        with staged_in(Path(self.save_dir or ".") / "wandb"):
            super()._scan_and_log_checkpoints(checkpoint_callback)  # type: ignore[misc]
