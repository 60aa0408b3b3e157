"""Where a run starts: afresh, or from a checkpoint of an earlier attempt.

- `ckpt_path=PATH`, or `ckpt_path=last` (RUN_DIR/checkpoints/last.ckpt): resume from that file.
  The config may differ (more steps, another learning rate), but the checkpoint must hold the
  same network and optimizer.
- `ckpt_path=null` (the default) and RUN_DIR holds an unfinished run (a last.ckpt, or an
  hpc_ckpt_N.ckpt that Lightning saved before a SLURM requeue, and no final status in
  results.json): resume from the newest of them, provided the config is the one that run used
  (a requeued job reruns its own command). Otherwise an error says what differs.
- `ckpt_path=null` and RUN_DIR holds an unfinished run killed before its first last.ckpt (its
  W&B id, metrics.csv or best.ckpt, and .hydra/config.yaml): a restart from step 0, provided the
  config is the recorded one; it logs to the same W&B run and replays the logged rows.
- RUN_DIR holds a finished or diverged run: every command but `ckpt_path=last` (its own
  continuation) is refused, whatever ckpt_path names; it is never overwritten.

Over 250 lines: the four cases above and the checks that a checkpoint fits the config are one
decision, made here once; each case is a short function.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.rundir.files import (
    CHECKPOINT_DIR,
    HYDRA_DIR,
    LAST,
    METRICS_FILE,
    WANDB_ID_FILE,
    read_status,
)

FINAL_STATUSES = ("finished", "diverged")
# Keys that say where things are or how progress is shown, not what is computed: a requeued job
# on another node may see another data path.
NOT_COMPARED = ("ckpt_path", "logger", "data.root", "data.download", "trainer.enable_progress_bar",
                "trainer.enable_model_summary")  # fmt: skip


_LOADED: dict[tuple[str, int, int], dict[str, Any]] = {}  # (path, mtime_ns, size) -> contents


def load_checkpoint(path: Path, label: str) -> dict[str, Any]:
    """A checkpoint's contents, memory-mapped (shapes and config are read, tensors mostly not).
    Read once per version of the file: the checks of one resume (resume point, config, history,
    fit, TensorBoard's purge step) all ask for it. Callers must not modify what it returns."""
    import torch

    try:
        stat = Path(path).stat()
        key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
        if key not in _LOADED:
            _LOADED.clear()  # one checkpoint at a time is all a run's checks read
            _LOADED[key] = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return _LOADED[key]
    except Exception as e:  # missing, truncated, not a checkpoint, or holding pickled objects
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ConfigError(
            f"{label}: {path} is not a readable checkpoint ({type(e).__name__}: {reason[:200]})"
        ) from None


def run_checkpoints(run_dir: Path) -> list[Path]:
    """The resume points a run directory holds: last.ckpt and Lightning's SLURM hpc_ckpt_N.ckpt."""
    last = run_dir / CHECKPOINT_DIR / LAST
    return [p for p in [last, *sorted(run_dir.glob("hpc_ckpt_*.ckpt"))] if p.is_file()]


def newest(paths: list[Path]) -> Path:
    """The checkpoint furthest into training (last.ckpt wins a tie)."""
    steps = {p: load_checkpoint(p, "resume").get("global_step", -1) for p in paths}
    return max(paths, key=lambda p: (steps[p], p.name == LAST))


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 4) -> str:
    """'optim.lr: 0.001 -> 0.01, ...' for the compared keys that differ ('' when none)."""
    a, b = flatten(old), flatten(new)
    keys = [k for k in sorted(a.keys() | b.keys())
            if not any(k == p or k.startswith(p + ".") for p in NOT_COMPARED) and a.get(k) != b.get(k)]  # fmt: skip
    shown = [f"{k}: {a.get(k, '(none)')!r} -> {b.get(k, '(none)')!r}" for k in keys[:limit]]
    return ", ".join(shown) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def resume_point(ckpt_path: str | None, run_dir: Path, config: Mapping[str, Any]) -> Path | None:
    """The checkpoint this run resumes from, or None for a fresh start (see the module doc)."""
    own_last = run_dir / CHECKPOINT_DIR / LAST
    path = None if ckpt_path is None else own_last if ckpt_path == "last" else Path(ckpt_path)
    # The status first: a finished run takes no command but its own continuation.
    status = read_status(run_dir)
    if status in FINAL_STATUSES and (path is None or path.resolve() != own_last.resolve()):
        what = "" if path is None else f" (ckpt_path={ckpt_path} would write another run over it)"
        raise ConfigError(
            f"{run_dir} already holds a {status} run and is left as it is{what}: choose another "
            "hydra.run.dir (or, to train that run further, add ckpt_path=last)"
        )
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"ckpt_path={ckpt_path}: no checkpoint file at {path}")
        return path
    found = run_checkpoints(run_dir)
    if not found:
        recorded = recorded_config(run_dir) if earlier_attempt(run_dir) else None
        diff = config_diff(recorded, config) if recorded is not None else ""
        if diff:
            raise ConfigError(
                f"{run_dir} holds an unfinished run (stopped before its first checkpoint) with "
                f"another config ({diff}). Rerun its own command to restart it, or choose another "
                "hydra.run.dir"
            )
        return None
    path = newest(found)
    diff = config_diff(load_checkpoint(path, "resume").get("config", {}), config)
    if diff:
        raise ConfigError(
            f"{run_dir} holds an unfinished run with another config ({diff}). Rerun its own "
            "command to resume it, add ckpt_path=last to continue it with this config, or choose "
            "another hydra.run.dir"
        )
    return path


def earlier_attempt(run_dir: Path) -> bool:
    """Whether an earlier attempt of the run trained here (its W&B id, rows or best model)."""
    ckpts = run_dir / CHECKPOINT_DIR
    return (
        (ckpts / WANDB_ID_FILE).is_file()
        or (run_dir / METRICS_FILE).is_file()
        or any(ckpts.glob("best*.ckpt"))
    )


def recorded_config(run_dir: Path) -> dict[str, Any] | None:
    """The config RUN_DIR/.hydra/config.yaml records, resolved (None: none recorded; {} when it
    cannot be read, which then differs from every config)."""
    from omegaconf import OmegaConf

    path = run_dir / HYDRA_DIR / "config.yaml"
    if not path.is_file():
        return None
    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception:  # torn, or an interpolation that no longer resolves
        return {}


def restarts(run_dir: Path) -> bool:
    """A start without a checkpoint that continues an earlier attempt of the same config
    (resume_point has compared them): same W&B run, its logged rows replayed."""
    return earlier_attempt(run_dir) and recorded_config(run_dir) is not None


def drop_earlier_best(run_dir: Path) -> None:
    """A run that starts from step 0 trains its own best model: an earlier attempt's best*.ckpt
    would make Lightning write best-v1.ckpt beside it, and best.ckpt stay the other's."""
    for path in (run_dir / CHECKPOINT_DIR).glob("best*.ckpt"):
        path.unlink()


def check_history(path: Path, run_dir: Path, config: Mapping[str, Any], logged: Any) -> None:
    """A run resumed from a checkpoint older than its logged history replays the steps in between;
    with the same config the replayed rows are the logged ones (and are not logged again), with
    another config they would be a second history over the first: refused. `logged` is the
    Counter of (step, metric names) rows in RUN_DIR/metrics.csv."""
    ckpt = load_checkpoint(path, "resume")
    if not config_diff(ckpt.get("config", {}), config):
        return
    step = ckpt.get("global_step", 0)
    later = [s for s, names in logged if s >= step and any(n.startswith("train/") for n in names)]
    if later:
        raise ConfigError(
            f"{run_dir}/metrics.csv already records training up to step {max(later)}, after "
            f"this checkpoint (step {step}); continuing from it with another config "
            f"({config_diff(ckpt.get('config', {}), config)}) would write a second history over "
            "the first. Resume with the run's own config, or into another hydra.run.dir"
        )


def _describe(config: Mapping[str, Any]) -> str:
    def target(group: str) -> str:
        node = config.get(group)
        return node.get("_target_", "?") if isinstance(node, Mapping) else "?"

    return f"model {target('model')} on data {target('data')}, optim {target('optim')}"


def check_fits(
    path: Path, state_dict: Mapping[str, Any], config: Mapping[str, Any], label: str
) -> None:
    """Raise ConfigError unless the checkpoint holds this run's network (same parameter names and
    shapes) and optimizer: resuming restores both."""
    ckpt = load_checkpoint(path, label)
    theirs, saved = ckpt.get("config", {}), ckpt.get("state_dict")
    problem = None
    if saved is None:
        problem = "it holds no state_dict (not a Lightning checkpoint)"
    else:
        missing = [k for k in state_dict if k not in saved]
        extra = [k for k in saved if k not in state_dict]
        shapes = [(k, tuple(saved[k].shape), tuple(v.shape)) for k, v in state_dict.items()
                  if k in saved and tuple(saved[k].shape) != tuple(v.shape)]  # fmt: skip
        if missing:
            problem = f"{len(missing)} parameter(s) of this run are not in it ({missing[0]}, ...)"
        elif extra:
            problem = f"it has {len(extra)} parameter(s) this run lacks ({extra[0]}, ...)"
        elif shapes:
            k, a, b = shapes[0]
            problem = f"{k} has shape {list(a)} there and {list(b)} here"
    old_optim = (
        theirs.get("optim", {}).get("_target_")
        if isinstance(theirs.get("optim"), Mapping)
        else None
    )
    new_optim = config.get("optim", {}).get("_target_")
    if problem is None and old_optim and old_optim != new_optim:
        problem = f"its optimizer state is for {old_optim}, this run uses {new_optim}"
    if problem:
        raise ConfigError(
            f"ckpt_path={label}: {path} does not fit this run. It holds {_describe(theirs)}; "
            f"this run builds {_describe(config)}: {problem}"
        )


def check_run_dir(run_dir: Path, cfg: Any) -> Path | None:
    """The run directory can be written, and what it holds allows this run: a fresh start, or
    the resume of an unfinished run with the same config (never a finished run overwritten).
    Returns the checkpoint the run resumes from (None: a fresh start)."""
    import tempfile

    from omegaconf import OmegaConf

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
    return resume_point(cfg.ckpt_path, run_dir, redact(OmegaConf.to_container(cfg, resolve=True)))
