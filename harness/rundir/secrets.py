"""Keep secrets out of everything a run records (W&B config, results.json, checkpoints, .hydra/).

A secret is the value of an environment variable whose name says it is one (WANDB_API_KEY,
HF_TOKEN, AWS_SECRET_ACCESS_KEY, DB_PASSWORD...). Matching by value catches a secret however it
got into the config: `${oc.env:HF_TOKEN}`, or pasted on the command line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
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
    if not secrets:
        return value
    if isinstance(value, str):
        for s in secrets:
            value = value.replace(s, MASK)
        return value
    if isinstance(value, Mapping):
        return {k: redact(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v, secrets) for v in value)
    return value


def redact_files(folder: Path, pattern: str = "*.yaml") -> None:
    """Rewrite the text files matching pattern in folder with secrets masked (Hydra's .hydra/)."""
    secrets = secret_values()
    for path in sorted(folder.glob(pattern)) if secrets and folder.is_dir() else []:
        text = path.read_text()
        masked = redact(text, secrets)
        if masked != text:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(masked)
            os.replace(tmp, path)
