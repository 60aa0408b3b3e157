"""Published dataset files: fetched from their source on first use, checked against the checksum
the source publishes, and never modified afterwards (tokenised copies go to token_cache).

One download at a time into a data folder: runs that start together (the jobs of a SLURM array,
the ranks of a multi-node job) would otherwise write the same files at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from datamodules.errors import DatasetError


@dataclass(frozen=True)
class RemoteFile:
    name: str  # the file's name in the dataset's folder
    url: str
    md5: str


def reason(error: BaseException) -> str:
    """One line for why a download failed: the last line of the error (torchvision's tell every
    mirror tried, one per line, the cause last)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip(" .")]
    return lines[-1] if lines else type(error).__name__


def download_lock(root: Path) -> FileLock:
    """Hold this while checking for and downloading files under root; the others wait, then find
    the files present."""
    root.mkdir(parents=True, exist_ok=True)
    return FileLock(str(root / ".download.lock"))


def fetch(folder: Path, files: Sequence[RemoteFile], dataset: str) -> None:
    """Download the files that are not in `folder` yet (torchvision checks each download's md5)."""
    with download_lock(folder.parent):
        _fetch(folder, files, dataset)


def _fetch(folder: Path, files: Sequence[RemoteFile], dataset: str) -> None:
    for f in files:
        if (folder / f.name).exists():
            continue
        from torchvision.datasets.utils import download_url  # here: text runs need no torchvision

        try:
            download_url(f.url, str(folder), f.name, f.md5)
        except Exception as e:  # no network, HTTP errors, a checksum mismatch
            (folder / f.name).unlink(missing_ok=True)  # never leave a file the next run would trust
            raise DatasetError(
                f"could not download {dataset} from {f.url} into {folder}: {reason(e)}"
            ) from e


def require(folder: Path, files: Sequence[RemoteFile], dataset: str, download: bool) -> None:
    missing = [f.name for f in files if not (folder / f.name).exists()]
    if missing:
        hint = "" if download else " (data.download=false)"
        raise DatasetError(
            f"{dataset} not found: {folder} lacks {', '.join(missing)}{hint}. Set data.root (or "
            f"DATA_DIR) to the folder holding {folder.name}/, or allow data.download=true."
        )


def verify(folder: Path, files: Sequence[RemoteFile]) -> None:
    from torchvision.datasets.utils import calculate_md5

    for f in files:
        if calculate_md5(folder / f.name) != f.md5:
            raise DatasetError(
                f"{folder / f.name} is corrupt (its md5 differs from the published file's, "
                f"{f.md5}): delete it and run again to download it afresh, or set data.verify=false "
                "for a file you changed on purpose."
            )
