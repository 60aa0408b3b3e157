"""The one Hydra composer: the config that a list of overrides makes, by Hydra's public compose API.

An override either picks files (a group choice: optim=adamw, +experiment=x, callbacks=[],
and every hydra.* setting) or changes a key of the composed config (a value override:
optim.lr=0.1, +key=v, ++key=v, ~key). Hydra composes the choices; the values are then applied
with OmegaConf as Hydra applies them after loading the files. So a sweep whose runs repeat a few
sets of choices composes each set once, and the type check has the defaults (the config before
the values) without a second composition. Whatever the fast path cannot apply goes to Hydra's
own compose, whose result (or error) is the truth.

Imports nothing heavy at module level: `python train.py --help` must stay fast.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from pathlib import Path
from typing import Any

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
CONFIG_NAME = "config"
JOB_NAME = "train"  # what @hydra.main in train.py calls the job: RUN_DIR/train.log


def config_groups() -> set[str]:
    """The config groups: the folders of conf/ (data, model, optim, ...)."""
    return {p.name for p in CONF_DIR.iterdir() if p.is_dir()}


def override_key(override: str) -> str:
    """'optim.lr' of 'optim.lr=0.1', '+optim.lr=0.1', '~optim.lr'."""
    return override.split("=", 1)[0].lstrip("+~")


def split_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """(group choices and hydra settings, value overrides), each in command-line order."""
    groups = config_groups()
    choices, values = [], []
    for o in overrides:
        key = override_key(o)
        head = key.split("/", 1)[0].split(".", 1)[0]
        is_group = ("." not in key and key in groups) or "/" in key or head == "hydra"
        (choices if is_group else values).append(o)
    return choices, values


def compose(overrides: list[str]) -> Any:
    """Hydra's own composition of conf/config.yaml with these overrides, hydra node included."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name=JOB_NAME):
        return hydra_compose(CONFIG_NAME, overrides=overrides, return_hydra_config=True)


class _NotSimple(Exception):
    """An override the fast path leaves to Hydra (a sweep, a package, a bad key)."""


def apply_values(cfg: Any, values: list[str]) -> None:
    """Apply value overrides to a composed config in place, with Hydra's semantics: key=v must
    name an existing key, +key=v adds a new one, ++key=v adds or replaces, ~key deletes.
    Raises _NotSimple for anything else, and on any error (Hydra then says what is wrong)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf, open_dict

    try:
        parsed = OverridesParser.create().parse_overrides(values)
    except Exception as e:
        raise _NotSimple from e
    for o in parsed:
        if o.package is not None or o.is_sweep_override():
            raise _NotSimple(o.input_line)
        key, value = o.key_or_group, o.value()
        try:
            if o.is_delete():
                current = OmegaConf.select(cfg, key, throw_on_missing=False)
                if current is None or (value is not None and value != current):
                    raise _NotSimple(o.input_line)
                parent, _, leaf = key.rpartition(".")
                with open_dict(cfg):
                    del (OmegaConf.select(cfg, parent) if parent else cfg)[leaf]
            elif o.is_add():
                existing = OmegaConf.select(cfg, key, throw_on_missing=False)
                if existing is not None and not isinstance(value, (dict, list)):
                    raise _NotSimple(o.input_line)
                OmegaConf.update(cfg, key, value, merge=True, force_add=True)
            else:
                OmegaConf.update(cfg, key, value, merge=True, force_add=o.is_force_add())
        except _NotSimple:
            raise
        except Exception as e:
            raise _NotSimple(o.input_line) from e


def _record_overrides(cfg: Any, overrides: list[str]) -> None:
    """The hydra node's record of the overrides, as Hydra's compose writes it."""
    from omegaconf import open_dict

    hydra = [o for o in overrides if override_key(o).startswith(("hydra.", "hydra/"))]
    task = [o for o in overrides if o not in hydra]
    dirname = cfg.hydra.job.config.override_dirname
    shown = sorted(o for o in task if override_key(o) not in dirname.exclude_keys)
    with open_dict(cfg.hydra):
        cfg.hydra.overrides.task = task
        cfg.hydra.overrides.hydra = hydra
        cfg.hydra.job.override_dirname = re.sub("=", dirname.kv_sep, dirname.item_sep.join(shown))


# Differs in every run of a sweep, and picks no file: applied to the cached composition of the
# other choices, like a value (++: W&B's ${args_override_hydra} macro).
RUN_DIR = ("hydra.run.dir=", "++hydra.run.dir=")

# The fork server's compositions (keep_compositions), inherited by every run it forks; of one
# state of conf/ (_conf_state), dropped when a file there changes.
_kept: dict[str, Any] | None = None


def keep_compositions() -> None:
    """From now on, compose_with_defaults called without `bases` keeps what it composes."""
    global _kept
    _kept = {"state": None, "bases": {}}


def _conf_state() -> list[tuple[str, int, int, int]]:
    """Each file and folder of conf/, symlinked folders followed as Hydra reads them: path, inode,
    size, modification time (ns) (the inode: a link pointed at another file of the same size and
    time); a dangling link (an editor's lock) or an entry gone meanwhile as itself, no error."""
    state, seen = [], set()
    for top, dirs, files in os.walk(CONF_DIR, followlinks=True):
        here = _stat(top)
        if here is None or (here.st_dev, here.st_ino) in seen:  # gone, or a link loop
            dirs.clear()
            continue
        seen.add((here.st_dev, here.st_ino))
        for name in (*dirs, *files):
            path = os.path.join(top, name)
            stat = _stat(path)
            if stat is None:
                state.append((path, -1, -1, -1))
            else:
                state.append((path, stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return sorted(state)


def _stat(path: str) -> os.stat_result | None:
    """What the path leads to, else the link itself, else None (removed since it was listed)."""
    for stat in (os.stat, os.lstat):
        try:
            return stat(path)
        except OSError:
            pass
    return None


def _kept_bases() -> dict[tuple[str, ...], Any]:
    if _kept is None:
        return {}
    state = _conf_state()
    if state != _kept["state"]:
        _kept.update(state=state, bases={})
    return _kept["bases"]


def compose_with_defaults(
    overrides: list[str], bases: dict[tuple[str, ...], Any] | None = None
) -> tuple[Any, Any]:
    """(the config these overrides make, the config of their group choices alone: the defaults
    every value override replaces). `bases` caches the second by choices, across calls."""
    choices, values = split_overrides(overrides)
    run_dir = [o for o in choices if o.startswith(RUN_DIR)]
    shared = tuple(o for o in choices if o not in run_dir)
    kept, bases = bases is None, _kept_bases() if bases is None else bases
    base = bases.get(shared)
    if base is None:
        base = compose(list(shared))
        # only conf/ is watched (_conf_state): one that reads other folders is composed each time
        if not (kept and base.hydra.searchpath):
            bases[shared] = base
    cfg = copy.deepcopy(base)
    if cfg.hydra.runtime.cwd != os.getcwd():  # composed elsewhere: the fork server, for its child
        cfg.hydra.runtime.cwd = os.getcwd()  # as Hydra records it, where the run runs
    if not values and not run_dir:
        return cfg, base
    try:
        apply_values(cfg, [*values, *run_dir])
        _record_overrides(cfg, overrides)
    except _NotSimple:
        cfg = compose(overrides)
    return cfg, base


def explain_composition_error(error: Exception, overrides: list[str]) -> str:
    """One line for a composition error: the unknown option or key, and what is allowed."""
    from hydra.errors import MissingConfigException
    from omegaconf import DictConfig, OmegaConf

    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        group, _, option = error.missing_cfg_file.rpartition("/")
        # Hydra lists the options only for a single choice; for a list (callbacks=[a,b]) we do
        options = error.options or sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        if group and options:
            return f"unknown option {group}={option}; {group} can be: {', '.join(options)}"
    cause = error.__cause__
    key = getattr(cause, "full_key", None)
    if key and "not in struct" in str(cause):
        parent, _, leaf = key.rpartition(".")
        choices, _ = split_overrides(overrides)
        try:
            base = compose(choices)
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


def unparsable(overrides: list[str]) -> str:
    """'cannot parse OVERRIDE' for the first override Hydra's grammar rejects."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for o in overrides:
        try:
            parser.parse_overrides([o])
        except Exception:
            return f"cannot parse {o}"
    return "cannot parse the overrides"
