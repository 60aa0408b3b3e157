"""Checkpoint files that are always whole: a kill during a save leaves the previous file intact.

Lightning's own save goes through fsspec, which stages the bytes in the system temp folder and
then moves them; across filesystems (local /tmp, a shared run directory) that move is a copy, and
a SIGKILL halfway leaves a truncated checkpoint. Here the bytes go to a temporary file beside the
target, are flushed to disk, and replace it in one rename.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())  # the data is on disk before the rename makes it visible
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
