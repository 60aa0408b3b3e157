"""W&B's own search engine, the `sweeps` package (the code W&B's server runs), imported quietly,
and its numpy values turned into plain Python ones."""

from __future__ import annotations

import warnings
from typing import Any


def engine() -> Any:
    with warnings.catch_warnings():  # pydantic v2 warns about the package's v1-style Config
        warnings.simplefilter("ignore")
        import sweeps
    return sweeps


def python_values(value: Any) -> Any:
    """numpy scalars and containers of them as plain Python values (`sweeps` returns numpy floats)."""
    if isinstance(value, dict):
        return {k: python_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [python_values(v) for v in value]
    item = getattr(value, "item", None)
    return item() if callable(item) and type(value).__module__ == "numpy" else value
