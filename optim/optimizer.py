"""The optimizer a run asks for, in one place: the class `optim._target_` names, checked before
anything is built; the factories a LightningModule calls on its parameter groups; those groups
(which weights get weight decay, which are Muon's hidden matrices); and the config checks, with a
dry build on a stand-in parameter so that torch.optim's own rules (a negative lr, betas out of
range) are one ConfigError before any data is read.

`optim` is a `_partial_` of a torch.optim class (or optim.muon.MuonAdamW), `scheduler` one of
optim.schedules. The built-ins and a user's own class (optim=custom optim._target_=mypkg.MyOpt)
pass the same checks, each failure one line.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from torch import nn

from harness.errors import ConfigError, constructor_errors
from harness.numbers import is_number

# --- the factories ---

OptimizerFactory = Callable[
    [Iterable[Any]], Any
]  # e.g. functools.partial(torch.optim.AdamW, lr=1e-3)
SchedulerFactory = Callable[..., Any]  # (optimizer, total_steps=N) -> torch scheduler

# Plain Python lists and dicts, never OmegaConf containers: they end up in optimizer state,
# which must load with torch.load(weights_only=True).
PLAIN = "all"


def build_optimizer_factory(cfg: Any) -> OptimizerFactory:
    from hydra.utils import instantiate

    return instantiate(cfg.optim, _convert_=PLAIN)


def build_scheduler_factory(cfg: Any) -> SchedulerFactory | None:
    from hydra.utils import instantiate

    return instantiate(cfg.scheduler, _convert_=PLAIN) if cfg.get("scheduler") else None


# --- parameter groups ---


def param_groups(module: nn.Module, decay_norm_and_bias: bool) -> list[dict[str, Any]]:
    """Trainable parameters in groups.

    Unless decay_norm_and_bias, tensors with fewer than two dimensions (biases, norm scales and
    shifts) get weight_decay=0: decaying them towards zero only hurts (the usual practice since
    Goyal et al., 2017; nanoGPT does the same). Hidden weight matrices (2-D, other than
    embeddings and the network's output `head`) form their own group tagged "matrix": True, which
    Muon reads (optim/muon.py) and every other optimizer ignores.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    outer = {id(m.weight) for m in module.modules() if isinstance(m, nn.Embedding)}
    for m in module.modules():
        head = getattr(m, "head", None)
        if isinstance(head, nn.Module):
            outer |= {id(p) for p in head.parameters()}
    small = [p for p in params if p.ndim < 2]
    matrices = [p for p in params if p.ndim == 2 and id(p) not in outer]
    rest = [p for p in params if p.ndim >= 2 and not (p.ndim == 2 and id(p) not in outer)]
    groups = [{"params": matrices, "matrix": True}, {"params": rest}]
    groups.append(
        {"params": small} if decay_norm_and_bias else {"params": small, "weight_decay": 0.0}
    )
    return [g for g in groups if g["params"]]


# --- the class optim._target_ names ---

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


# --- config checks ---

# key -> (test, what is allowed). Missing keys are skipped: not every optimizer has momentum.
OPTIM_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "optim.lr": (lambda v: is_number(v) and v > 0, "a positive number"),
    "optim.weight_decay": (lambda v: is_number(v) and v >= 0, "a number >= 0"),
    "optim.momentum": (lambda v: is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
}


def dry_build_optimizer(cfg: Any, optim_name: str, scheduler_name: str) -> None:
    """Build the optimizer on one 2x2 parameter and the schedule for 100 steps."""
    import torch

    check_optimizer_target(cfg.optim, optim_name)
    with constructor_errors(f"optim={optim_name} ({cfg.optim._target_})"):
        optimizer = build_optimizer_factory(cfg)([torch.nn.Parameter(torch.zeros(2, 2))])
    with constructor_errors(f"scheduler={scheduler_name}"):
        factory = build_scheduler_factory(cfg)
        if factory is not None:
            factory(optimizer, total_steps=100)
