"""Secrets given to a sweep stay out of its files and of its runs' command lines.

A secret (harness.rundir.secrets: the value of an environment variable named like one, HF_TOKEN...) is
replaced by a reference the run resolves from its environment, `${oc.env:HF_TOKEN}` (OmegaConf's
resolver, which train.py's config understands). sweep.json, plan.json, the ledger and every run's
argv (visible in `ps`) then hold the reference; the run's resolved config holds the secret, and the
run masks it in what it records. A run's key hashes the reference, so it names the same run
whatever the token's value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from harness.rundir.secrets import SECRET_NAME, replace_strings, secret_values


def secret_names(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """{secret value: the name of a variable holding it}, longest value first."""
    environ = os.environ if environ is None else environ
    names: dict[str, str] = {}
    for name in sorted(environ):
        if SECRET_NAME.search(name):
            names.setdefault(environ[name], name)
    return {value: names[value] for value in secret_values(environ)}


def env_refs(value: Any, environ: Mapping[str, str] | None = None) -> Any:
    """A copy of value (nested dicts, lists, strings) with each secret as ${oc.env:NAME}."""
    refs = {secret: "${oc.env:" + name + "}" for secret, name in secret_names(environ).items()}
    return replace_strings(value, refs) if refs else value
