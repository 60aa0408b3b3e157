"""Keep secrets out of everything a run records (W&B config, results.json, checkpoints, .hydra/).

A secret is the value of an environment variable whose name says it is one (WANDB_API_KEY,
HF_TOKEN, AWS_SECRET_ACCESS_KEY, DB_PASSWORD...). Matching by value catches a secret however it
got into the config: `${oc.env:HF_TOKEN}`, or pasted on the command line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
MIN_LENGTH = 8  # shorter values (KEY=1, TOKEN=abc) would redact ordinary text
MASK = "***"


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    environ = os.environ if environ is None else environ
    values = {v for k, v in environ.items() if SECRET_NAME.search(k) and len(v) >= MIN_LENGTH}
    return sorted(values, key=len, reverse=True)  # a secret containing another goes first


def redact(value: Any, secrets: list[str] | None = None) -> Any:
    """A copy of value (nested dicts, lists, strings) with every secret replaced by ***."""
    secrets = secret_values() if secrets is None else secrets
    return replace_strings(value, dict.fromkeys(secrets, MASK)) if secrets else value


def replace_strings(value: Any, replacements: Mapping[str, str]) -> Any:
    """A copy of value (nested dicts, lists, strings) with each key of replacements, wherever it
    occurs in a string, replaced by its value (in the mapping's order)."""
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, Mapping):
        return {k: replace_strings(v, replacements) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(replace_strings(v, replacements) for v in value)
    return value
