"""What train.py does before Hydra takes over: compose the config from the command line and check
it, so that a typo or a bad value is one clear line (exit status 2) and no run directory is made.

Imports nothing heavy at module level: `python train.py --help` must stay fast.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
# Hydra flags that do their own thing (help, printing the config, multirun...): no pre-check.
HYDRA_FLAGS = ("-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info", "-m", "--multirun",
               "-p", "--package", "--shell-completion", "-sc", "--resolve", "--version", "--config-path",
               "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--experimental-rerun")  # fmt: skip


def fail(message: str, status: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(status)


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="train"):
        return compose("config", overrides=overrides, return_hydra_config=True)


def _split(overrides: list[str]) -> tuple[list[str], list[str]]:
    """(group choices and hydra settings, value overrides) from key=value strings."""
    groups = {p.name for p in CONF_DIR.iterdir() if p.is_dir()}
    choices, values = [], []
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        head = key.split("/", 1)[0].split(".", 1)[0]
        is_group = ("." not in key and key in groups) or "/" in key or head == "hydra"
        (choices if is_group else values).append(o)
    return choices, values


def explain_composition_error(error: Exception, overrides: list[str]) -> str:
    from hydra.errors import MissingConfigException
    from omegaconf import DictConfig, OmegaConf

    if isinstance(error, MissingConfigException) and error.options and error.missing_cfg_file:
        group, _, option = error.missing_cfg_file.rpartition("/")
        return f"unknown option {group}={option}; {group} can be: {', '.join(error.options)}"
    cause = error.__cause__
    key = getattr(cause, "full_key", None)
    if key and "not in struct" in str(cause):
        parent, _, leaf = key.rpartition(".")
        choices, _ = _split(overrides)
        try:
            base = _compose(choices)
            node = OmegaConf.select(base, parent) if parent else base
        except Exception:
            node = None
        if isinstance(node, DictConfig):
            keys = [str(k) for k in node if k != "hydra"]
            close = difflib.get_close_matches(leaf, keys, n=1)
            hint = f" Did you mean {parent + '.' if parent else ''}{close[0]}?" if close else ""
            return f"unknown key {key}.{hint} Keys under {parent or 'the top level'}: {', '.join(keys)}"
        return f"unknown key {key}"
    return str(error).replace("\n", " ").strip()


def check_types(cfg, base, value_overrides: list[str]) -> None:
    """An override keeps the type of the value it replaces: a number stays a number, a flag a flag.
    (Strings are not checked: some keys take a string or a number, as trainer.precision does.)"""
    from omegaconf import OmegaConf

    from harness.errors import ConfigError

    missing = object()
    for o in value_overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        old = OmegaConf.select(base, key, default=missing)
        new = OmegaConf.select(cfg, key, default=missing)
        if old is missing or new is missing or old is None or new is None:
            continue
        number = (int, float)
        if isinstance(old, bool) and not isinstance(new, bool):
            raise ConfigError(f"{key} must be true or false, got {new!r}")
        if (
            isinstance(old, number)
            and not isinstance(old, bool)
            and (isinstance(new, bool) or not isinstance(new, number))
        ):
            raise ConfigError(f"{key} must be a number (default {old!r}), got {new!r}")


def check_overrides(overrides: list[str]):
    """Compose the config these overrides make (as train.py would) and run every check on it:
    unknown options and keys, types, value ranges, the model fitting the data, a dry build of
    each part. Raise ConfigError naming the bad value and what is allowed; return the resolved
    config (without the hydra node). Sweep runners call it on each proposed run's overrides."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException, OverrideParseException
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    from harness.config.checks import check_config
    from harness.errors import ConfigError

    try:
        cfg = _compose(overrides)
    except OverrideParseException as e:
        raise ConfigError(f"{_unparsable(overrides)}: {e}".replace("\n", " ").strip()) from None
    except HydraException as e:
        raise ConfigError(explain_composition_error(e, overrides)) from None
    except Exception as e:  # anything else composing raises is still about the overrides
        raise ConfigError(str(e).replace("\n", " ").strip()) from None
    HydraConfig.instance().set_config(cfg)
    choices, values = _split(overrides)
    try:
        if values:
            check_types(cfg, _compose(choices), values)
        with open_dict(cfg):
            del cfg["hydra"]
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as e:  # e.g. ${oc.env:NAME} with NAME unset
        where = f"{e.full_key}: " if getattr(e, "full_key", None) else ""
        raise ConfigError(where + str(e).splitlines()[0]) from None
    check_config(cfg)
    return cfg


def _unparsable(overrides: list[str]) -> str:
    """'cannot parse OVERRIDE' for the first override Hydra's grammar rejects."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for o in overrides:
        try:
            parser.parse_overrides([o])
        except Exception:
            return f"cannot parse {o}"
    return "cannot parse the overrides"


def check_run_dir(run_dir: Path, cfg) -> None:
    """The run directory can be written, and what it holds allows this run: a fresh start, or
    the resume of an unfinished run with the same config (never a finished run overwritten)."""
    import tempfile

    from omegaconf import OmegaConf

    from harness.errors import ConfigError
    from harness.run.resume import resume_point
    from harness.rundir.secrets import redact

    existing = run_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is not a directory")
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise ConfigError(
            f"cannot write the run directory {run_dir} ({e.strerror or e}); choose another with "
            "hydra.run.dir=DIR"
        ) from None
    resume_point(cfg.ckpt_path, run_dir, redact(OmegaConf.to_container(cfg, resolve=True)))


def precheck(argv: list[str]) -> None:
    """Exit with status 2 and one line on stderr if the command line cannot make a run."""
    if any(a.split("=", 1)[0] in HYDRA_FLAGS for a in argv):
        return
    from hydra.core.hydra_config import HydraConfig

    from harness.errors import ConfigError

    try:
        cfg = check_overrides(argv)
        check_run_dir(Path(HydraConfig.get().run.dir), cfg)
    except ConfigError as e:
        fail(str(e))
