"""Reading the user's own files (data=text_files, text_corpus, image_folder). Every problem is one
DatasetError naming the file and, where there is one, the line: the harness prints it as one line
and exits with status 2."""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datamodules import DatasetError


def check_encoding(encoding: object) -> None:
    try:
        codecs.lookup(str(encoding))
    except LookupError:
        raise ValueError(
            f"data.encoding must be a text encoding Python knows (utf-8, latin-1, cp1252...), "
            f"got {encoding!r}"
        ) from None


def existing(path: str | Path, key: str) -> Path:
    """The path given as `key` (data.train ...), which must be a file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatasetError(f"{key}={path}: no such file")
    return path


def read_text(path: Path, encoding: str) -> str:
    """The whole file decoded; an empty file, or bytes that are not `encoding`, are errors."""
    data = path.read_bytes()
    if not data.strip():
        raise DatasetError(f"{path}: the file is empty")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DatasetError(
            f"{path}:{line}: byte {data[e.start]:#04x} is not {encoding} (data.encoding={encoding}); "
            "set data.encoding to the file's encoding, e.g. data.encoding=latin-1"
        ) from None
    return text.removeprefix("\ufeff")  # a byte-order mark is not text


def lines(text: str) -> list[str]:
    """Lines as a text editor numbers them (line i + 1 is element i): split at \\n only, since
    str.splitlines also splits at form feeds and Unicode separators inside a line."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def content_digest(paths: list[Path]) -> list[str]:
    """SHA-256 of each file's bytes (what keys the token cache: the content, not the name)."""
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def given(paths: dict[str, str | None]) -> dict[str, Path]:
    """Split name -> its file, for the splits given (data.train=PATH ...); each must exist."""
    return {split: existing(p, f"data.{split}") for split, p in paths.items() if p is not None}


def built_once(
    paths: dict[str, str | None],
    cache_dir: str | None,
    name: str,
    settings: dict[str, Any],
    build: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """build()'s tensors, from the token cache when these files' content was read before with
    these settings (cache_dir None: always built)."""
    from datamodules.token_cache import cached, content_cache_file

    files = given(paths)
    key = {**settings, "splits": list(files)}  # which file plays which part
    cache = content_cache_file(cache_dir, name, list(files.values()), key) if cache_dir else None
    return cached(cache, [], build)
