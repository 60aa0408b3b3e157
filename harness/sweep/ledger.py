"""The sweep's ledger: DIR/ledger.jsonl, one JSON line per event of a run, keyed by the run's key
(a hash of its overrides). The last line of a key is the run's state. Append-only, one write per
line, so a runner killed at any moment leaves every earlier line intact; a torn last line is
skipped when read, and the next record starts on a line of its own.

States: running -> finished | diverged | stopped (by hyperband) | failed | interrupted.
finished, diverged and stopped are results: a resumed sweep keeps them. running (the runner died),
interrupted and failed are done again.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

DONE = ("finished", "diverged", "stopped")


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        if path.is_file():
            for line in path.read_text(errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the runner died mid-write
                if isinstance(entry, dict) and isinstance(entry.get("key"), str):
                    self.entries[entry["key"]] = {**self.entries.get(entry["key"], {}), **entry}

    def record(self, key: str, **fields: Any) -> dict[str, Any]:
        entry = {**self.entries.get(key, {}), **fields, "key": key, "time": round(time.time(), 3)}
        self.entries[key] = entry
        append_line(self.path, json.dumps({"key": key, **fields, "time": entry["time"]}))
        return entry

    def done(self, key: str) -> bool:
        return self.entries.get(key, {}).get("state") in DONE


def append_line(path: Path, line: str) -> None:
    """Append `line` (ASCII, no newline) as one line of its own.

    What holds: O_APPEND puts every write at the end of the file, and on a local file system one
    write() of a line this short (well under a page) goes in whole, never interleaved with other
    processes' appends. A SIGKILL or crash either lands before the write (the line is missing)
    or after it (whole); at worst (a power cut, a full disk) the file ends in a torn line, which
    the reader skips. A short write is continued until every byte is written, so only a full
    disk can tear a line; the next append then starts on a fresh line, losing nothing more.
    Over NFS, appends from several machines may interleave.
    """
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"  # a killed writer's last line
        data = (("\n" if torn else "") + line + "\n").encode()
        while data:
            written = os.write(fd, data)
            if written <= 0:
                raise OSError(f"could not append to {path}: write() wrote nothing")
            data = data[written:]
    finally:
        os.close(fd)
