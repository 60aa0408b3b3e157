"""Checks a composed config before anything runs: value ranges of the knobs people sweep, the
model fitting the data, and a dry build of each part by its own constructor (which knows its own
rules best: torch.optim rejects a negative lr, Lightning an unknown precision); then, once the
data is set up, its sizes against the batch size and limits (check_sizes). Every failure is one
ConfigError naming the key, the bad value and what is allowed.

Over 250 lines because every check of a run's config is here: one place to look for what is
refused and why, each check a short function."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from harness.config.compose import CONF_DIR
from harness.errors import ConfigError, constructor_errors
from harness.numbers import is_int, is_number
from harness.protocol import DataTraits, ModelTraits, TaskTraits, traits
from harness.run.build import build_callback, build_datamodule, target_class
from optim.optimizer import OPTIM_RULES, dry_build_optimizer

SEED_MAX = 2**32 - 1  # numpy's seed range, which Lightning's seed_everything enforces
# key -> (test, what is allowed). Missing keys are skipped: not every optimizer has momentum.
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (lambda v: is_int(v) and 0 <= v <= SEED_MAX, f"an integer from 0 to {SEED_MAX}"),
    **OPTIM_RULES,
    "trainer.max_epochs": (
        lambda v: v is None or (is_int(v) and (v == -1 or v >= 1)),
        "an integer >= 1 (or -1: no limit)",
    ),
    "trainer.max_steps": (
        lambda v: is_int(v) and (v == -1 or v >= 1),
        "an integer >= 1 (or -1: no limit)",
    ),
    "trainer.accumulate_grad_batches": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    "trainer.gradient_clip_val": (
        lambda v: v is None or (is_number(v) and v > 0),
        "a positive number or null",
    ),
    "trainer.log_every_n_steps": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    "checkpoint_every_n_steps": (
        lambda v: v is None or (is_int(v) and v >= 1),
        "an integer >= 1 or null",
    ),
    "logger.wandb.init_timeout": (
        lambda v: is_number(v) and v > 0,
        "a positive number of seconds",
    ),
    "logger.wandb.log_model": (
        lambda v: v is None or v is False or v in ("best", "all"),
        "false, best or all (checkpoints as W&B artifacts)",
    ),
    "pretrained": (
        lambda v: v is None or (isinstance(v, str) and Path(v).is_file()),
        "null or the path of a checkpoint file",
    ),
    "finetune": (lambda v: v in ("full", "linear"), "full or linear"),
    "compile": (lambda v: isinstance(v, bool), "true or false"),
    "channels_last": (lambda v: isinstance(v, bool), "true or false"),
}


def _select(cfg: DictConfig, key: str) -> tuple[bool, Any]:
    sentinel = object()
    value = OmegaConf.select(cfg, key, default=sentinel)
    return value is not sentinel, value


def check_finite(tree: Any, prefix: str = "") -> None:
    """Every number in the config is finite: 1e400 parses as inf, and nan compares false."""
    import math

    items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    for k, v in items:
        key = f"{prefix}{k}"
        if isinstance(v, (dict, list)):
            check_finite(v, key + ".")
        elif isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{key} must be a finite number, got {v!r}")


def check_values(cfg: DictConfig) -> None:
    check_finite(OmegaConf.to_container(cfg, resolve=True))
    for key, (ok, allowed) in RULES.items():
        present, value = _select(cfg, key)
        if present and not ok(value):
            raise ConfigError(f"{key} must be {allowed}, got {value!r}")


# What a task predicts and what a dataset holds to predict (harness.protocol declares the traits).
PREDICTS = {"class": "a class per example", "tokens": "the tokens of a text corpus"}
HOLDS = {"class": "labelled examples", "tokens": "a text corpus without labels"}


def _plural(kind: str | None) -> str:
    return f"{kind}s" if kind and not kind.endswith("s") else str(kind)


def _task_takes(task: TaskTraits, data: DataTraits) -> bool:
    """A task that works on one kind of input only says so with `input_kind` (rotation: images)."""
    return task.input_kind is None or task.input_kind == data.input_kind


def fit_problem(data_cls: type, task_cls: type, model_cls: type, model_cfg: Any) -> str | None:
    """Why this model cannot learn this task on this data, with `{data}`, `{task}`, `{model}`
    for the option names; None when it can."""
    data, task = traits(data_cls, DataTraits), traits(task_cls, TaskTraits)
    model = traits(model_cls, ModelTraits)
    if not _task_takes(task, data):
        needs = _plural(task.input_kind)
        return f"task={{task}} needs {needs} but data={{data}} gives {_plural(data.input_kind)}."
    if data.input_kind != model.input_kind:
        return f"model={{model}} takes {_plural(model.input_kind)} but data={{data}} gives {_plural(data.input_kind)}."
    if data.target_kind != task.target_kind:
        return f"task={{task}} predicts {PREDICTS[task.target_kind]} but data={{data}} holds {HOLDS[data.target_kind]}."
    if task.target_kind not in model.outputs:
        return f"model={{model}} cannot predict {PREDICTS[task.target_kind]}, which task={{task}} needs."
    if task.causal and bool(model_cfg.get("bidirectional", model.bidirectional)):
        how = "with model.bidirectional=true " if "bidirectional" in model_cfg else ""
        return (
            f"model={{model}} {how}sees the tokens after each position, and task={{task}} "
            "predicts each token from the ones before it (task=mlm takes such models)."
        )
    return None


def check_fit(cfg: DictConfig) -> None:
    """The model takes the data's inputs (images, tokens) and can make the task's predictions,
    and the task predicts what the data holds (a class per example, or the tokens of a corpus)."""
    data_cls, task_cls, model_cls = (
        target_class(cfg.data),
        target_class(cfg.task.module),
        target_class(cfg.model),
    )
    problem = fit_problem(data_cls, task_cls, model_cls, cfg.model)
    if problem is None:
        return
    names = {group: _choice(cfg, group) for group in ("data", "task", "model")}
    data, task = traits(data_cls, DataTraits), traits(task_cls, TaskTraits)
    if data.target_kind != task.target_kind or not _task_takes(task, data):

        def fits(t: DictConfig) -> bool:
            other = traits(get_class(t.module._target_), TaskTraits)
            return other.target_kind == data.target_kind and _task_takes(other, data)

        tasks = _options("task", fits)
        hint = f"Tasks for data={names['data']}: {', '.join(tasks) or 'none'}."
    else:
        models = _options(
            "model", lambda m: fit_problem(data_cls, task_cls, get_class(m._target_), m) is None
        )
        hint = f"Models for task={names['task']} on data={names['data']}: {', '.join(models) or 'none'}."
    raise ConfigError(f"{problem.format(**names)} {hint}")


def _choice(cfg: DictConfig, group: str) -> str:
    with contextlib.suppress(Exception):
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get().runtime.choices[group]
    node = cfg.task.module if group == "task" else cfg[group]
    return str(node.get("_target_", group))


def _options(group: str, fits: Callable[[DictConfig], bool]) -> list[str]:
    """The options of a config group (conf/<group>/*.yaml) for which fits(option's config)."""
    names = []
    for path in sorted((CONF_DIR / group).glob("*.yaml")):
        with contextlib.suppress(Exception):  # an option that does not load fits nothing
            if fits(OmegaConf.load(path)):
                names.append(path.stem)
    return names


def dry_build(cfg: DictConfig) -> None:
    """Build each part that can be built without data, so its own checks run now."""
    with constructor_errors(f"data={_choice(cfg, 'data')}"):
        build_datamodule(cfg)
    dry_build_optimizer(cfg, _choice(cfg, "optim"), _choice(cfg, "scheduler"))
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is not None:
            with constructor_errors(f"callbacks.{name}"):
                build_callback(node)
    dry_build_trainer(cfg)


def dry_build_trainer(cfg: DictConfig) -> None:
    """A Trainer of cfg.trainer, built and dropped: its own checks (devices, precision...) now."""
    import lightning as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    with constructor_errors("trainer"), warnings_only("lightning.pytorch"):
        try:
            L.Trainer(**cfg.trainer, logger=False, enable_checkpointing=False)
        except MisconfigurationException as e:
            raise ValueError(str(e)) from None


@contextlib.contextmanager
def warnings_only(logger_name: str) -> Iterator[None]:
    """Only warnings and errors from this logger meanwhile (Lightning's info lines on every build)."""
    log = logging.getLogger(logger_name)
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)


def check_trains(cfg: DictConfig) -> None:
    """A checkpoint given with nothing to train (trainer.max_epochs=0, or fewer epochs than it
    has done) is someone wanting to evaluate it; Lightning would stop with a traceback and leave
    a failed run directory. eval.py does that."""
    ckpt, epochs = cfg.get("ckpt_path"), cfg.trainer.get("max_epochs")
    if not ckpt:
        return
    why = next(
        (f"trainer.{k}=0" for k in ("max_epochs", "max_steps") if cfg.trainer.get(k) == 0), None
    )
    if why is None and is_int(epochs) and epochs > 0 and ckpt != "last" and Path(ckpt).is_file():
        from harness.run.resume import load_checkpoint

        try:
            done = load_checkpoint(Path(ckpt), "ckpt_path").get("epoch")
        except ConfigError:  # unreadable: resuming says so, with what to do
            done = None
        if is_int(done) and done > epochs:  # Lightning refuses to restore it
            why = f"trainer.max_epochs={epochs} (it has trained {done} epochs)"
    if why:
        raise ConfigError(
            f"ckpt_path={ckpt} with {why} trains nothing; to evaluate the checkpoint: "
            f"python eval.py ckpt_path={ckpt} [split=test|val] (eval.py --help)"
        )


def check_bounded(cfg: DictConfig) -> None:
    """A learning-rate schedule is laid out over the run's steps: a run bounded by neither
    max_epochs nor max_steps (-1 both; Lightning counts infinitely many steps) has none to lay
    it over, and would fail in configure_optimizers with a traceback."""
    trainer = cfg.trainer
    unbounded = trainer.get("max_epochs") == -1 and trainer.get("max_steps") in (-1, None)
    if cfg.get("scheduler") and unbounded:
        raise ConfigError("a learning-rate schedule needs a finite run: set trainer.max_epochs or "
                          "trainer.max_steps (both are -1)")  # fmt: skip


REQUIRED = ("data", "model", "optim", "scheduler", "trainer", "task")  # groups every run builds


def check_groups(cfg: DictConfig) -> None:
    """A group removed (~scheduler) leaves a run without a part it builds."""
    for group in REQUIRED:
        if cfg.get(group) is None:
            options = ", ".join(_options(group, lambda _: True))
            raise ConfigError(
                f"every run needs a {group} (~{group} removed it); {group} can be: {options}"
            )


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError on the first problem found."""
    check_groups(cfg)
    check_trains(cfg)  # from a checkpoint, max_epochs=0 means "evaluate" (eval.py)
    check_bounded(cfg)
    check_values(cfg)
    check_fit(cfg)
    dry_build(cfg)


# Whether the data, cut into batches and limited by trainer.limit_*_batches, leaves something to
# train, validate and test: checked once the datamodule is set up (its sizes known), before any
# file of the run is written. A length that cannot be known (a streamed loader) is not checked.


def limited(n: int, limit: Any) -> int:
    """Batches run of n when limited as Lightning does: an int is a count, a float a fraction."""
    if limit is None:
        return n
    return min(n, limit) if is_int(limit) else int(n * limit)


def _length(make_loader: Callable[[], Any]) -> int | None:
    try:
        return len(make_loader())
    except Exception:  # no such split, or a loader without a length
        return None


def check_sizes(cfg: Any, datamodule: Any, has_test: bool) -> None:
    """ConfigError when a split this run uses would run no batch, or when validation is due
    after more batches than an epoch has."""
    t, bs = cfg.trainer, cfg.data.get("batch_size")
    with_bs = f"data.batch_size={bs}" if bs is not None else "this data"
    splits = [("train", "train_dataloader"), ("val", "val_dataloader")]
    splits += [("test", "test_dataloader")] if cfg.test and has_test else []
    for split, fn in splits:
        n = _length(getattr(datamodule, fn))
        if n is None:
            continue
        limit = t.get(f"limit_{split}_batches")
        runs = limited(n, limit)
        if runs == 0:
            verb = {"train": "train", "val": "validate", "test": "test"}[split]
            why = f"{with_bs} gives {n} {split} batches" + (
                f" and trainer.limit_{split}_batches={limit} keeps {runs}" if n else ""
            )
            fix = "test=false, " if split == "test" else ""
            raise ConfigError(
                f"nothing to {verb}: {why} (a training batch is whole: a last incomplete one is "
                f"dropped); use {fix}a smaller data.batch_size or a larger limit"
            )
        vci = t.get("val_check_interval")
        if split == "train" and is_int(vci) and t.get("check_val_every_n_epoch") and vci > runs:
            raise ConfigError(
                f"trainer.val_check_interval={vci} is more than the {runs} training batches of an "
                f"epoch ({with_bs}): at most {runs}, or a fraction of an epoch such as 0.5"
            )
