"""A sweep file as W&B reads it, and the command line of one of its runs, built the way `wandb
agent` builds it (W&B's own macro expansion), so that a run is the same process online and offline.

A run's identity is its overrides: `run_key` hashes them, so a ledger can tell a run it has seen.
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError
from harness.sweep.engine import engine

# What `wandb agent` puts in place of ${env}, ${interpreter} and ${program}; the `${args...}`
# macros come from W&B's own create_sweep_command_args. ${args_json_file} needs a file the agent
# writes, which no run here reads.
SUPPORTED_MACROS = ("env", "interpreter", "program", "args", "args_no_hyphens", "args_no_equals",
                    "args_no_boolean_flags", "args_json", "args_append_hydra", "args_override_hydra")  # fmt: skip


@dataclass(frozen=True)
class SweepSpec:
    name: str
    config: dict[str, Any]  # the sweep file, as W&B reads it
    path: Path

    @property
    def method(self) -> str:
        return self.config["method"]

    @property
    def metric(self) -> dict[str, str] | None:
        return self.config.get("metric")

    @property
    def run_cap(self) -> int | None:
        return self.config.get("run_cap")


def load_spec(path: str | Path) -> SweepSpec:
    """Read and check a sweep file; a problem is one ConfigError naming it."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read sweep file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {yaml_problem(e)}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: a sweep file is a mapping (method, metric, parameters ...)")
    violations = engine().schema_violations_from_proposed_config(config)
    if violations:
        raise ConfigError(f"{path} is not a valid W&B sweep: {'; '.join(violations)}")
    if config["method"] == "custom":
        raise ConfigError(f"{path}: method custom needs a W&B server; use grid, random or bayes")
    for chunk in config.get("command", []):
        chunk = str(chunk)
        if chunk.startswith("${") and chunk.endswith("}") and chunk[2:-1] not in SUPPORTED_MACROS:
            raise ConfigError(
                f"{path}: command macro {chunk} is not supported offline; "
                f"supported: {', '.join('${' + m + '}' for m in SUPPORTED_MACROS)}"
            )
    return SweepSpec(name=str(config.get("name") or path.stem), config=config, path=path)


def yaml_problem(error: yaml.YAMLError) -> str:
    """A YAML error in one line: where (1-based line and column) and what."""
    mark, problem = getattr(error, "problem_mark", None), getattr(error, "problem", None)
    if mark is None or problem is None:
        return " ".join(str(error).split())
    line = f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    context, start = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and start is not None:
        line += f" ({context} that starts at line {start.line + 1}, column {start.column + 1})"
    return line


def overrides(params: dict[str, Any]) -> list[str]:
    """key=value strings exactly as `wandb agent` writes them for ${args_no_hyphens}."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    return create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})[
        "args_no_hyphens"
    ]


def run_key(params: dict[str, Any], extra: list[str]) -> str:
    """12 hex digits that name a run by what it runs: its sorted overrides."""
    text = "\n".join(sorted(overrides(params) + list(extra)))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _narrowed(spec: SweepSpec, key: str, param: dict[str, Any], value: str) -> dict[str, Any]:
    """A swept parameter narrowed to the given subset of its values (`optim=adam,sgd`, `seed=0`),
    in the sweep's order."""
    if "values" not in param:
        raise ConfigError(f"{key} is drawn from a distribution by {spec.name}; it cannot be fixed")
    asked = [yaml.safe_load(v) for v in value.split(",")] if value else []

    def same(a: Any, b: Any) -> bool:
        try:
            return a == b or float(a) == float(b)  # 1e-3 (a YAML string) is 0.001
        except (TypeError, ValueError):
            return str(a) == str(b)

    unknown = [a for a in asked if not any(same(a, v) for v in param["values"])]
    if unknown or not asked:
        allowed = ", ".join(map(str, param["values"]))
        raise ConfigError(f"{key}={value}: {spec.name} sweeps {key} over {allowed}; give a subset")
    return {**param, "values": [v for v in param["values"] if any(same(a, v) for a in asked)]}


def apply_extra(spec: SweepSpec, extra: list[str]) -> tuple[SweepSpec, dict[str, str]]:
    """Extra KEY=VALUE overrides for every run. One naming a constant parameter of the sweep
    (`value:`) replaces its value; one naming a swept parameter with a subset of its values
    (`optim=adam,sgd`, `seed=0`) narrows the grid to them; the others are returned as fixed args,
    W&B style ({key: value})."""
    parameters = dict(spec.config["parameters"])
    fixed: dict[str, str] = {}
    for item in extra:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"extra override {item!r} is not KEY=VALUE")
        name = key.lstrip("+~")
        param = parameters.get(name)
        if param is None:
            fixed[key] = value
        elif set(param) == {"value"}:
            parameters[name] = {"value": yaml.safe_load(value) if value else value}
        else:
            parameters[name] = _narrowed(spec, name, param, value)
    config = {**spec.config, "parameters": parameters}
    return SweepSpec(name=spec.name, config=config, path=spec.path), fixed


def command(spec: SweepSpec, params: dict[str, Any], fixed: dict[str, str]) -> list[str]:
    """The argv `wandb agent` would run for these parameters, plus the fixed args (the extra
    overrides and hydra.run.dir), which go wherever the sweep's ${args...} macro puts arguments."""
    from wandb.sdk.launch.sweeps.utils import (
        DEFAULT_SWEEP_COMMAND,
        create_sweep_command,
        create_sweep_command_args,
    )

    args = {k: {"value": v} for k, v in {**params, **fixed}.items()}
    macros: dict[str, list[str]] = create_sweep_command_args({"args": args})  # type: ignore[assignment]
    macros["env"] = ["/usr/bin/env"]
    macros["interpreter"] = [sys.executable]  # the agent says "python"; this one has the harness
    macros["program"] = [str(spec.config.get("program", "train.py"))]
    argv: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        template = create_sweep_command(list(spec.config.get("command") or DEFAULT_SWEEP_COMMAND))
    for chunk in map(str, template):
        argv += macros[chunk[2:-1]] if chunk.startswith("${") and chunk.endswith("}") else [chunk]
    return argv
