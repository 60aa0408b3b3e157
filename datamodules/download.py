"""One download at a time into a data folder: runs that start together (the jobs of a SLURM
array, the ranks of a multi-node job) would otherwise write the same files at once."""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock


def download_lock(root: Path) -> FileLock:
    """Hold this while checking for and downloading files under root; the others wait, then find
    the files present."""
    root.mkdir(parents=True, exist_ok=True)
    return FileLock(str(root / ".download.lock"))
