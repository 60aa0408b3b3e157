"""The optimizer class a config names (optim._target_), checked before anything is built: it
imports, it is a torch.optim.Optimizer subclass, and it takes every keyword the config gives it.
The built-ins and a user's own class (optim=custom optim._target_=mypkg.MyOpt) pass the same
checks, each failure one line."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from harness.errors import ConfigError

HYDRA_KEYS = ("_target_", "_partial_", "_convert_", "_recursive_", "_args_")


def locate(target: str) -> Any:
    """The object at a dotted path: the longest importable module prefix, then attributes."""
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        module = ".".join(parts[:i])
        try:
            obj = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and (module == e.name or module.startswith(e.name + ".")):
                continue  # no such module: try a shorter prefix
            raise ConfigError(f"optim._target_={target} does not import: {e}") from None
        except Exception as e:  # the module exists, but importing it fails
            raise ConfigError(f"optim._target_={target} does not import: {e!r}") from None
        try:
            for name in parts[i:]:
                obj = getattr(obj, name)
        except AttributeError:
            break
        return obj
    raise ConfigError(
        f"optim._target_={target} does not import: give a dotted path to a class, e.g. "
        "mypkg.optim.MyOpt, whose package is importable (installed, on PYTHONPATH, or in this checkout)"
    )


def accepted_keywords(cls: type) -> tuple[list[str], bool]:
    """(the keyword arguments cls(params, ...) takes, whether it takes **kwargs too)."""
    sig = inspect.signature(cls.__init__)
    names, var_kw = [], False
    for i, p in enumerate(sig.parameters.values()):
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and i > 1:  # not self, params
            names.append(p.name)
    return names, var_kw


def check_optimizer_target(optim_cfg: Any, choice: str) -> type:
    """The class optim._target_ names, or ConfigError saying what is wrong with it."""
    import torch
    from omegaconf import OmegaConf

    if OmegaConf.is_missing(optim_cfg, "_target_") or not optim_cfg.get("_target_"):
        raise ConfigError(
            f"optim={choice} needs optim._target_=mypkg.MyOpt: the torch.optim.Optimizer class to run"
        )
    target = str(optim_cfg._target_)
    obj = locate(target)
    if not (isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer)):
        what = obj.__name__ if isinstance(obj, type) else type(obj).__name__
        raise ConfigError(
            f"optim._target_={target} is not a torch.optim.Optimizer subclass (it is a {what})"
        )
    names, var_kw = accepted_keywords(obj)
    unknown = [str(k) for k in optim_cfg if k not in HYDRA_KEYS and k not in names]
    if unknown and not var_kw:
        hint = (
            f"; the keys come from optim={choice}: for your own class use optim=custom "
            f"optim._target_={target} (lr only) and add its keywords with +optim.KEY=VALUE"
            if choice != "custom"
            else ""
        )
        raise ConfigError(
            f"optim.{unknown[0]} is not an argument of {target}; it takes: "
            f"{', '.join(names) or 'no keywords'}{hint}"
        )
    return obj
