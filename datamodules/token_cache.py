"""Tokenised tensors kept on disk, so that a dataset is read, checked and tokenised once.

One file per (dataset folder, settings) under the cache folder (for the user's own files, per
(their content, settings)). It holds the tensors and the size
and modification time of every source file they came from; when a source file changes, the next
run rebuilds the tensors (and checks the file's checksum again). Saved with torch.save and read
with weights_only=True: tensors, lists and strings only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)
FORMAT = 1  # bump when what a datamodule stores changes meaning


def cache_file(cache_dir: str | Path, dataset: str, folder: Path, settings: dict[str, Any]) -> Path:
    key = json.dumps([FORMAT, str(folder.resolve()), settings], sort_keys=True)
    return Path(cache_dir) / f"{dataset}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"


def content_cache_file(
    cache_dir: str | Path, dataset: str, sources: Sequence[Path], settings: dict[str, Any]
) -> Path:
    """For the user's own files: keyed by what the files hold (SHA-256), wherever they are;
    a file that changes gets a new cache file, so `cached` needs no source state for them."""
    from datamodules.files import content_digest

    key = json.dumps([FORMAT, content_digest(list(sources)), settings], sort_keys=True)
    return Path(cache_dir) / f"{dataset}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"


def source_state(files: Sequence[Path]) -> list[list[Any]]:
    return [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def cached(path: Path | None, sources: Sequence[Path], build: Callable[[], Any]) -> Any:
    """build()'s result, from `path` if it was built from these very source files; else built
    now and stored there (a failure to store only costs the next run the rebuild)."""
    state = source_state(sources)
    if path is not None and path.is_file():
        try:
            stored = torch.load(path, weights_only=True)
            if isinstance(stored, dict) and stored.get("sources") == state:
                return stored["data"]
        except Exception as e:  # a torn, truncated or foreign file: rebuild it
            log.warning("ignoring unreadable cache file %s (%s)", path, e)
    data = build()
    if path is not None:
        store(path, {"sources": state, "data": data})
    return data


def store(path: Path, value: Any) -> None:
    """Write `value` to `path` whole or not at all; any failure is only a warning (the cache is an
    optimisation). torch.save reports a full disk as RuntimeError, not OSError."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(value, tmp)
        os.replace(tmp, path)  # atomic: a concurrent run reads the old file or the new one
    except Exception as e:
        log.warning("could not write the token cache %s (%s)", path, e)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)  # a partial file would only fill the disk further
