"""Files that are always whole: written beside the target, then renamed over it in one step."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_text_atomic(path: Path, text: str) -> None:
    """A reader (or a kill) sees the old file or the new one, never half of either. The temporary
    name is this process's own (two writers never share one), and a failed write (a full disk)
    leaves no temporary file behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())  # on disk before its name says it is whole
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
