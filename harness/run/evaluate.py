"""eval.py: a trained checkpoint evaluated on a split, or its predictions for new inputs, in a run
directory of its own. Everything comes from the checkpoint (weights_only): the run's resolved
config rebuilds the datamodule and the network, the datamodule's saved state gives the
vocabulary and class names. Overrides (data.test=OTHER.tsv, trainer.accelerator=cpu) change that
config before anything is built.

Bad input (a missing or foreign checkpoint, an unknown key, a split the data lacks) is one
ConfigError or DatasetError raised before anything is written. Imports nothing heavy at module
level: `python eval.py --help` must stay fast. (Over 250 lines: eval.py's one path, from the
command line through the checkpoint's config to the run directory it writes, a function a step.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.rundir.files import CHECKPOINT_DIR, HYDRA_DIR

SPLITS = {"test": "test", "val": "validate"}  # split= -> the Lightning stage that evaluates it
BEST = "best.ckpt"
# eval.py's own keys, with their defaults; every other KEY=VALUE overrides the checkpoint's config.
OWN_KEYS = {"ckpt_path": None, "split": "test", "predict": None, "predict_out": None,
            "run_dir": None, "tokens": 200, "temperature": 1.0}  # fmt: skip
ALIASES = {"hydra.run.dir": "run_dir"}  # as train.py names the run directory

USAGE = """\
usage: python eval.py ckpt_path=PATH [split=test|val] [KEY=VALUE ...]
       python eval.py ckpt_path=PATH predict=FILE [predict_out=OUT.csv|OUT.jsonl] [KEY=VALUE ...]

Evaluate a trained checkpoint, or predict with it, without training. The network, the datamodule,
the vocabulary and the class names are rebuilt from the checkpoint alone (its saved config and
data state); KEY=VALUE overrides change that config (data.test=OTHER.tsv, data.batch_size=256,
trainer.accelerator=cpu, logger.wandb.mode=disabled).

  ckpt_path=PATH    a harness checkpoint (RUN_DIR/checkpoints/best.ckpt), or a run directory
                    (its own checkpoints/best.ckpt, wherever the directory was copied to)
  split=test|val    the split evaluated (default test); metrics go to RUN_DIR/results.json
                    under their logged names (test/acc, test/loss ...), and to W&B (job_type=eval)
  predict=FILE      predict instead: a classifier of text reads a .csv/.tsv (column
                    data.text_column), a .jsonl (that key) or plain text (one input a line); one
                    of images reads an image folder or one image file; a language model continues
                    each line of FILE (tokens=200 temperature=1.0, seeded by seed=)
  predict_out=OUT   where predictions go: .csv or .jsonl (default RUN_DIR/predictions.csv); a
                    classifier's rows hold the predicted class name and every class's probability
  run_dir=DIR       the evaluation's run directory (default outputs/eval/DATE/TIME); never an
                    existing non-empty directory, so never the training run's (alias hydra.run.dir)

Exit status: 0 done; 2 bad input (one line on stderr, nothing written).
"""


@dataclass
class Request:
    own: dict[str, Any]  # eval.py's keys (OWN_KEYS)
    overrides: list[str]  # KEY=VALUE for the checkpoint's config


def parse(argv: list[str]) -> Request:
    own, overrides = dict(OWN_KEYS), []
    for arg in argv:
        key, eq, value = arg.partition("=")
        key = ALIASES.get(key, key)
        if not eq or not key:
            raise ConfigError(f"expected KEY=VALUE, got {arg!r} (python eval.py --help)")
        if key in OWN_KEYS:
            own[key] = _number(value) if key in ("tokens", "temperature") else value
        else:
            overrides.append(arg)
    if not own["ckpt_path"]:
        raise ConfigError("ckpt_path=PATH is required: a checkpoint file or a run directory")
    if own["split"] not in SPLITS:
        raise ConfigError(f"split must be test or val, got {own['split']!r}")
    return Request(own, overrides)


def _number(value: str) -> float:
    try:
        return float(value) if "." in value or "e" in value else int(value)
    except ValueError:
        raise ConfigError(f"expected a number, got {value!r}") from None


def checkpoint_file(given: str) -> Path:
    """The checkpoint a path names: the file itself, or a run directory's best checkpoint, found
    in that directory wherever it was copied to (see run_dir_best)."""
    path = Path(given).expanduser()
    if path.is_dir():
        path = run_dir_best(path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path={given}: no checkpoint file at {path}")
    return path.resolve()


def run_dir_best(run_dir: Path) -> Path:
    """RUN_DIR's best checkpoint: results.json's best_checkpoint read relative to RUN_DIR (a
    path recorded absolute, by the directory a copy came from, by its name under
    RUN_DIR/checkpoints/), else RUN_DIR/checkpoints/best.ckpt. Never a file outside RUN_DIR."""
    from harness.rundir.files import read_results

    default = run_dir / CHECKPOINT_DIR / BEST
    try:
        recorded = read_results(run_dir).get("best_checkpoint")
    except (OSError, ValueError, AttributeError):
        return default
    if not isinstance(recorded, str) or not recorded:
        return default
    path = Path(recorded)
    if not path.is_absolute():
        return run_dir / path
    return run_dir / CHECKPOINT_DIR / path.name


def read_run_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint's contents; ConfigError unless it is one this harness wrote."""
    from harness.run.resume import load_checkpoint

    ckpt = load_checkpoint(path, "ckpt_path")
    config = ckpt.get("config") if isinstance(ckpt, dict) else None
    parts = ("data", "model", "task")
    if not isinstance(config, dict) or not all(isinstance(config.get(p), dict) for p in parts) \
            or "state_dict" not in ckpt:  # fmt: skip
        raise ConfigError(
            f"ckpt_path={path}: not a checkpoint of this harness (it holds no run config); "
            "give RUN_DIR/checkpoints/best.ckpt of a train.py run"
        )
    return ckpt


def run_config(ckpt: dict[str, Any], overrides: list[str]) -> Any:
    """The checkpoint's config with the overrides applied (Hydra's semantics; types kept)."""
    from omegaconf import OmegaConf

    from harness.config.command import _as_config_error, check_types
    from harness.config.compose import _NotSimple, apply_values, config_groups, override_key

    base = OmegaConf.create(ckpt["config"])
    cfg = base.copy()
    OmegaConf.set_struct(cfg, True)  # a misspelt key is an error, not a new key
    groups = config_groups()
    for o in overrides:
        key = override_key(o)
        if key in groups:  # data=mnist: another dataset is data.KEY=VALUE on the trained one
            raise ConfigError(
                f"{o}: the checkpoint fixes {key}; change its keys instead ({key}.KEY=VALUE)"
            )
        try:
            apply_values(cfg, [o])
        except _NotSimple:
            raise ConfigError(
                f"cannot apply {o}: no key {key} in the checkpoint's config"
            ) from None
    with _as_config_error():
        check_types(cfg, base, overrides)
    OmegaConf.set_struct(cfg, False)
    cfg.pretrained = (
        None  # the weights come from the checkpoint, not from the encoder it started from
    )
    from harness.config.checks import check_values, dry_build_trainer

    check_values(cfg)  # ranges, as for training: nothing is written before they pass
    dry_build_trainer(cfg)  # trainer.accelerator=gpu on a CPU machine: one line, now
    return cfg


def default_run_dir() -> Path:
    now = datetime.now()
    return Path("outputs") / "eval" / now.strftime("%Y-%m-%d") / now.strftime("%H-%M-%S-%f")


def check_run_dir(given: str | None) -> Path:
    run_dir = Path(given).expanduser() if given else default_run_dir()
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise ConfigError(
            f"run_dir={run_dir} already holds files (a training run's?); an evaluation writes into "
            "a new or empty directory: choose another run_dir"
        )
    return run_dir.absolute()


@dataclass
class Rebuilt:
    cfg: Any
    datamodule: Any
    module: Any  # the task's LightningModule, the checkpoint's weights loaded
    dims: dict[str, Any]


def rebuild(
    cfg: Any, ckpt: dict[str, Any], stage: str | None, dims: dict[str, Any] | None = None
) -> Rebuilt:
    """The datamodule (the checkpoint's state loaded, then set up for `stage`; None: not set up,
    for data that needs no split to give its shapes, or `dims` given) and the LightningModule
    with its weights."""
    from harness.errors import constructor_errors
    from harness.run.build import build_datamodule, build_module, build_net, target_class

    data_cls = target_class(cfg.data)
    with constructor_errors(f"data={cfg.data._target_}"):
        datamodule = build_datamodule(cfg)
        state = ckpt.get(data_cls.__qualname__)
        if state:
            datamodule.load_state_dict(state)  # vocabulary, class names, normalisation
        if stage is not None:
            datamodule.prepare_data()
            datamodule.setup(stage)
        dims = datamodule.dims if dims is None else dims
    with constructor_errors("model"):
        net = build_net(cfg, dims)
        module = build_module(cfg, net, dims)
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:  # another network than the config builds on this data
        first = str(e).strip().splitlines()
        raise ConfigError(
            f"the checkpoint's weights do not fit the network its config builds here "
            f"({first[1].strip() if len(first) > 1 else first[0]})"
        ) from None
    return Rebuilt(cfg, datamodule, module.eval(), dict(dims))


def with_job_type(cfg: Any, job_type: str) -> None:
    if cfg.get("logger") and cfg.logger.get("wandb") is not None:
        cfg.logger.wandb.job_type = job_type


def evaluate(rebuilt: Rebuilt, split: str, ckpt_path: Path, run_dir: Path) -> dict[str, Any]:
    """Evaluate the split with Lightning's loop, as the training run tested its best checkpoint;
    write results.json, the config, metrics.csv and W&B (job_type=eval) in run_dir."""
    import lightning as L

    from harness.run.best import metrics_of
    from harness.run.console import ProgressBar
    from harness.run.recipe import plain_config
    from harness.rundir.files import write_results
    from harness.rundir.provenance import git_state
    from harness.tracking import wandb as wandb_run
    from harness.tracking.loggers import make_loggers, update_summary

    started = time.time()
    cfg = rebuilt.cfg
    with_job_type(cfg, "eval")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, cfg)
    config = plain_config(cfg)
    meta = {"git": git_state(), "run_dir": str(run_dir), "checkpoint": str(ckpt_path)}
    results: dict[str, Any] = {"status": "failed", "job_type": "eval", "split": split,
                               "checkpoint": str(ckpt_path), "meta": meta}  # fmt: skip
    loggers = make_loggers(cfg, run_dir, config, meta, None, None)  # a fresh run, nothing replayed
    try:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        progress = [ProgressBar()] if cfg.trainer.get("enable_progress_bar", True) else []
        trainer = L.Trainer(**cfg.trainer, logger=loggers.all or False, callbacks=progress,
                            default_root_dir=str(run_dir), enable_checkpointing=False)  # fmt: skip
        loop = trainer.test if split == "test" else trainer.validate
        loop(rebuilt.module, datamodule=rebuilt.datamodule, verbose=False)
        results.update({k: v for k, v in metrics_of(trainer).items() if k.startswith(f"{split}/")})
        results.update(status="finished", runtime_s=round(time.time() - started, 3))
        write_results(run_dir, results)
        update_summary(loggers, results)
    finally:
        wandb_run.finish(0 if results["status"] == "finished" else 1)
    return results


def write_config(run_dir: Path, cfg: Any) -> None:
    """RUN_DIR/.hydra/config.yaml: the config evaluated (secrets masked), as a run records it."""
    from omegaconf import OmegaConf

    from harness.rundir.files import write_text_atomic
    from harness.rundir.secrets import redact

    (run_dir / HYDRA_DIR).mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / HYDRA_DIR / "config.yaml", redact(OmegaConf.to_yaml(cfg)))


def main(argv: list[str]) -> int:
    """eval.py's command line -> its exit status (2: bad input, one line, nothing written)."""
    import sys

    from harness.rundir.files import BAD_INPUT

    if any(a in ("-h", "--help") for a in argv):
        print(USAGE, end="")
        return 0
    from datamodules import DatasetError

    try:
        request = parse(argv)
        path = checkpoint_file(request.own["ckpt_path"])
        ckpt = read_run_checkpoint(path)
        cfg = run_config(ckpt, request.overrides)
        run_dir = check_run_dir(request.own["run_dir"])
        if request.own["predict"]:
            from harness.run.predict import predict

            out = predict(cfg, ckpt, {**request.own, "checkpoint": str(path)}, run_dir)
            print(f"predictions: {out}")
            return 0
        split = request.own["split"]
        check_split(cfg, split)
        rebuilt = rebuild(cfg, ckpt, SPLITS[split])
    except (ConfigError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return BAD_INPUT
    results = evaluate(rebuilt, split, path, run_dir)
    shown = ", ".join(
        f"{k}={v:.4g}" for k, v in sorted(results.items()) if k.startswith(f"{split}/")
    )
    print(f"{shown}\nresults: {run_dir / 'results.json'}")
    return 0


def check_split(cfg: Any, split: str) -> None:
    from harness.errors import constructor_errors
    from harness.protocol import DataTraits, traits
    from harness.run.build import build_datamodule

    with constructor_errors(f"data={cfg.data._target_}"):
        datamodule = build_datamodule(cfg)
    if split == "test" and not traits(datamodule, DataTraits).has_test_split:
        raise ConfigError(
            f"data={cfg.data._target_} has no test split: evaluate split=val, or give the data "
            "a test file (data.test=PATH where the data takes one)"
        )
