"""Labelled texts in the formats people keep them in, one example per record:
  lines  `LABEL<space or tab>TEXT` (Kim's sentence files, SST-2's, TREC's)
  csv    comma-separated, a header naming the columns (label_column, text_column)
  tsv    the same, tab-separated
  jsonl  one JSON object a line with those keys
Blank lines are skipped. A record -> (line number, label as a string, text)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from datamodules import DatasetError
from datamodules.files import lines

FORMATS = ("lines", "csv", "tsv", "jsonl")
SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
Record = tuple[int, str, str]  # (line number, label, text)
_LABELLED = re.compile(r"([^ \t]+)[ \t](.*)", re.DOTALL)


def file_format(path: str | Path, format: str | None) -> str:
    """data.format, else told by the file's extension (anything else: `LABEL TEXT` lines)."""
    return format or SUFFIXES.get(Path(path).suffix.lower(), "lines")


def read_records(
    path: Path, text: str, format: str, label_column: str, text_column: str
) -> list[Record]:
    if format == "lines":
        records = _lines(path, text)
    elif format == "jsonl":
        records = _jsonl(path, text, label_column, text_column)
    else:
        records = _table(path, text, "\t" if format == "tsv" else ",", label_column, text_column)
    if not records:
        raise DatasetError(f"{path}: the file holds no examples")
    return records


def _lines(path: Path, text: str) -> list[Record]:
    records = []
    for n, line in enumerate(lines(text), 1):
        if not line.strip():
            continue
        match = _LABELLED.fullmatch(line)
        if match is None:
            why = "no label" if line[0] in " \t" else "a label and no text"
            raise DatasetError(
                f"{path}:{n}: expected LABEL<space or tab>TEXT, got {line[:60]!r} ({why})"
            )
        records.append((n, match[1], match[2]))
    return records


def _table(
    path: Path, text: str, delimiter: str, label_column: str, text_column: str
) -> list[Record]:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = reader.fieldnames or []
    missing = [c for c in (label_column, text_column) if c not in header]
    if missing:
        raise DatasetError(
            f"{path}:1: the header has no column {', '.join(map(repr, missing))} (it has "
            f"{', '.join(map(repr, header))}); name the columns with data.label_column and "
            "data.text_column"
        )
    records = []
    for row in reader:
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # a blank line
        label, body = row.get(label_column), row.get(text_column)
        if label is None or not label.strip():
            raise DatasetError(
                f"{path}:{reader.line_num}: no label (column {label_column!r} is empty)"
            )
        if body is None:
            raise DatasetError(
                f"{path}:{reader.line_num}: no text (the row has no column {text_column!r})"
            )
        records.append((reader.line_num, label.strip(), body))
    return records


def _jsonl(path: Path, text: str, label_column: str, text_column: str) -> list[Record]:
    records = []
    for n, line in enumerate(lines(text), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}:{n}: not a JSON object ({e.msg})") from None
        if not isinstance(obj, dict):
            raise DatasetError(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}")
        label, body = obj.get(label_column), obj.get(text_column)
        if label is None or str(label).strip() == "":
            raise DatasetError(f"{path}:{n}: no label (no key {label_column!r})")
        if not isinstance(body, str):
            raise DatasetError(f"{path}:{n}: no text (key {text_column!r} is not a string)")
        records.append((n, str(label).strip(), body))
    return records
