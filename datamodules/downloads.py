"""Published dataset files: fetched from their source on first use, checked against the checksum
the source publishes, and never modified afterwards (tokenised copies go to token_cache).

One download at a time into a data folder: runs that start together (the jobs of a SLURM array,
the ranks of a multi-node job) would otherwise write the same files at once. A file is downloaded
under a temporary name beside its final one and renamed once its md5 matches, so a run killed
mid-download leaves no file the next run would take for the dataset; that run fetches it again."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

try:
    import fcntl
except ImportError:  # Windows: filelock's lock, whose file stays behind
    fcntl = None

from datamodules import DatasetError


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


def _missing(path: Path) -> list[Path]:
    """path and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _remove_empty(folders: Sequence[Path]) -> None:
    for folder in folders:  # deepest first; one that is not empty keeps its parents too
        with suppress(OSError):
            folder.rmdir()


def _open_lock(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:  # another account's lock file: flock works on a read-only one too
        return os.open(path, os.O_RDONLY)


@contextmanager
def download_lock(root: Path, *folders: Path) -> Iterator[None]:
    """Hold this while checking for and downloading files under root; the others wait, then find
    the files present. On release nothing is left that was not there before, but what was
    downloaded: the lock file goes, and so do root and `folders` where this call made them and
    they are still empty (a failed download).

    The lock is flock(2) on root/.download.lock: the kernel releases it when its holder dies, so a
    kill never leaves a stale lock. Removing the file is safe with two processes racing: the holder
    unlinks it before unlocking, and a waiter that then gets the lock on the unlinked file (it had
    opened it before the unlink) sees that the path no longer names it, and opens the path afresh.
    A kill leaves the lock file (harmless: the next holder takes it and removes it). Where runs
    race, a folder made by one may be in use by another when the first is done; the folder then
    stays, empty.
    """
    made: list[Path] = []  # the folders this call makes, deepest first
    if fcntl is None:
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / ".download.lock")):
            yield
        return
    path = root / ".download.lock"
    while True:
        made = sorted({*made, *_missing(root)}, key=lambda p: -len(p.parts))
        try:
            root.mkdir(parents=True, exist_ok=True)
            fd = _open_lock(path)
        except FileNotFoundError:
            if root.is_dir():
                raise DatasetError(f"cannot create the download lock {path}") from None
            continue  # the holder before us removed root after a failed download
        except OSError as e:
            raise DatasetError(
                f"cannot download into {root} ({e.strerror}): set data.root (or DATA_DIR) to a "
                "writable folder, or put the dataset's files there"
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # waits for the holder
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                break
        except FileNotFoundError:  # unlinked by the holder we waited for
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        created = [f for folder in folders for f in _missing(folder)]
        yield
    finally:
        try:  # all under the lock, so that no other holder sees a folder vanish
            _remove_empty(created)
            with suppress(OSError):  # a folder others may write to but not delete from
                path.unlink(missing_ok=True)
            _remove_empty(made)
        finally:
            os.close(fd)  # unlocks


def fetch(folder: Path, files: Sequence[RemoteFile], dataset: str) -> None:
    """Download the files that are not in `folder` yet (torchvision checks each download's md5)."""
    if all((folder / f.name).exists() for f in files):
        return  # only read: a shared, read-only data folder works (only whole files get a name)
    with download_lock(folder.parent, folder):
        _fetch(folder, files, dataset)


def _fetch(folder: Path, files: Sequence[RemoteFile], dataset: str) -> None:
    for f in files:
        if (folder / f.name).exists():
            continue
        from torchvision.datasets.utils import download_url  # here: text runs need no torchvision

        # Only the lock's holder writes here, so a fixed name will do: a killed run's leftover is
        # overwritten (or, if whole, kept: download_url checks its md5 first) and renamed.
        part = folder / f".{f.name}.part"
        try:
            download_url(f.url, str(folder), part.name, f.md5)  # raises unless the md5 matches
            with open(part, "rb+") as written:
                os.fsync(written.fileno())  # on disk before its name says it is whole
            os.replace(part, folder / f.name)  # atomic: the file is there whole or not at all
        except Exception as e:  # no network, HTTP errors, a checksum mismatch, a full disk
            with suppress(OSError):
                part.unlink(missing_ok=True)
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
