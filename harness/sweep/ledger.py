"""The sweep's ledger: DIR/ledger.jsonl, one JSON line per event of a run, keyed by the run's key
(a hash of its overrides). The last line of a key is the run's state. Append-only, one write per
line, so a runner killed at any moment leaves every earlier line intact; a torn last line is
skipped when read.

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
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the runner died mid-write
                self.entries[entry["key"]] = {**self.entries.get(entry["key"], {}), **entry}

    def record(self, key: str, **fields: Any) -> dict[str, Any]:
        entry = {**self.entries.get(key, {}), **fields, "key": key, "time": round(time.time(), 3)}
        self.entries[key] = entry
        line = json.dumps({"key": key, **fields, "time": entry["time"]}) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        return entry

    def done(self, key: str) -> bool:
        return self.entries.get(key, {}).get("state") in DONE
