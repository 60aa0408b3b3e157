"""Read what W&B wrote offline (RUN_DIR/wandb/offline-run-*/run-ID.wandb): what a run sent,
checked without a server (by tests, and by harness.tracking.wandb_sync before an upload). The file is a LevelDB-style log of protobuf records: a 7-byte
header (":W&B", magic, version), then 32 KiB blocks of chunks (crc32, length, kind) where kind
1 is a whole record and 2, 3, 4 the first, middle and last pieces of one."""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
INTERNAL = {"_step", "_runtime", "_timestamp", "trainer/global_step"}


def records(path: Path, timeout: float = 60) -> Iterator[Any]:
    """The records of a finished run's file. W&B writes it from its own service process, which
    may still be flushing when the run's process has returned from wandb.finish: wait for the
    exit record."""
    deadline = time.time() + timeout
    while True:
        found = list(_read(path))
        if any(r.WhichOneof("record_type") == "exit" for r in found) or time.time() > deadline:
            return iter(found)
        time.sleep(0.2)


def _read(path: Path) -> Iterator[Any]:
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    pos, pieces = 7, b""
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a chunk header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:
            break
        if pos + 7 + length > len(data):  # cut short by a kill
            break
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        pieces = chunk if kind in (1, 2) else pieces + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pieces)
            yield record


def items_of(items: Any) -> dict[str, Any]:
    return {
        "/".join(i.nested_key) if i.nested_key else i.key: json.loads(i.value_json) for i in items
    }


def history_rows(path: Path) -> list[tuple[int, frozenset[str]]]:
    """(trainer step, metric names) of every history row, as metrics.csv rows are keyed."""
    rows = []
    for r in records(path):
        if r.WhichOneof("record_type") == "history":
            items = items_of(r.history.item)
            rows.append((int(items["trainer/global_step"]), frozenset(items.keys() - INTERNAL)))
    return rows


def summary(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in records(path):
        if r.WhichOneof("record_type") == "summary":
            out.update(items_of(r.summary.update))
    return out


def config(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in records(path):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            out.update(items_of(r.run.config.update))
        elif kind == "config":
            out.update(items_of(r.config.update))
    return out


def artifacts(path: Path) -> list[dict[str, Any]]:
    """The artifacts a run logged: name, type, aliases, metadata and files ({name: local copy})."""
    out = []
    for r in records(path):
        if r.WhichOneof("record_type") == "artifact":
            a = r.artifact
            out.append({
                "name": a.name, "type": a.type, "aliases": list(a.aliases),
                "metadata": json.loads(a.metadata or "{}"),
                "files": {c.path: c.local_path for c in a.manifest.contents},
            })  # fmt: skip
    return out
