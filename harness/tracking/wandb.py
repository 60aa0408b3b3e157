"""W&B for a run, set up so that it never blocks: no prompt, no hang, no crash for want of a key.

Mode, first match wins: logger.wandb.mode if set; $WANDB_MODE if set; "online" when an API key is
configured ($WANDB_API_KEY, an identity-token file, or a ~/.netrc entry for the W&B host); else
"offline", whose files land in RUN_DIR/wandb/offline-run-*/ for a later `wandb sync`. Online
mode that cannot start (server unreachable, key rejected) falls back to offline.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import netrc
import os
import secrets
import string
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from harness.config.compose import override_key, split_overrides
from harness.errors import ConfigError
from harness.rundir.files import (
    WANDB_ID_FILE,  # beside the checkpoints: a resumed run logs to the same W&B run
    Replayed,
)
from harness.rundir.secrets import redact
from harness.tracking.artifacts import CheckpointArtifacts, log_model_arg

log = logging.getLogger(__name__)
MODES = ("online", "offline", "disabled")


def has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host or "") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_mode(configured: str | None) -> str:
    if configured is not None and configured not in MODES:
        raise ConfigError(
            f"logger.wandb.mode must be one of {', '.join(MODES)} or null, got {configured!r}"
        )
    mode = configured
    if mode is None and "WANDB_MODE" in os.environ:
        mode = os.environ["WANDB_MODE"]
        mode = {"dryrun": "offline", "run": "online"}.get(mode, mode)
        if mode not in MODES:
            raise ConfigError(
                f"WANDB_MODE must be one of {', '.join(MODES)}, got {os.environ['WANDB_MODE']!r}"
            )
    if mode is None:
        mode = "online" if has_api_key() else "offline"
    if mode == "online" and not has_api_key():
        log.warning(
            "W&B: no API key configured, logging offline instead (wandb login, then wandb sync)"
        )
        mode = "offline"
    return mode


def run_id(checkpoint_dir: Path, resuming: bool) -> str:
    """A resumed run logs to the W&B run saved beside its checkpoints; a fresh one gets a new id.
    (The W&B run belongs to the run directory, as metrics.csv does.)"""
    saved = checkpoint_dir / WANDB_ID_FILE
    if resuming and saved.is_file() and saved.read_text().strip():
        return saved.read_text().strip()
    alphabet = string.ascii_lowercase + string.digits  # W&B's own id alphabet and length
    return "".join(secrets.choice(alphabet) for _ in range(8))


class RunWandbLogger(CheckpointArtifacts, WandbLogger):
    """Lightning's WandbLogger, skipping the rows a resumed run replays (see harness.rundir.files)."""

    def __init__(self, *args: Any, replayed: Replayed | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._replayed = replayed
        # Lightning always passes anonymous=None to wandb.init, and wandb 0.31 warns that the
        # setting "has no effect" whenever it is given at all.
        self._wandb_init.pop("anonymous", None)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self._replayed is not None and self._replayed.skip(step, metrics):
            return
        super().log_metrics(metrics, step)


def save_run_id(checkpoint_dir: Path, run_id: str) -> None:
    """Beside the checkpoints, so that resuming from them continues this W&B run (rank zero only:
    every other rank drew its own, unused id)."""
    from harness.rundir import files

    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    files.write_text_atomic(checkpoint_dir / WANDB_ID_FILE, run_id)  # a kill leaves it whole


def sync_hint(run_dir: Path) -> str:
    # one call for all attempts of a resumed run, oldest first (harness.tracking.wandb_sync)
    return f"python -m harness.tracking.wandb_sync --run {run_dir}"


# Groups that name the recipe, in the order a group name lists them.
RECIPE_GROUPS = ("task", "data", "model", "optim", "scheduler", "experiment")
# Overrides that change how a run is watched or where its files are, not what it computes: runs
# that differ only in these (or in the seed) share a W&B group. A trailing "." or "_": a prefix.
NOT_RECIPE = ("seed", "ckpt_path", "test", "hydra.", "logger.", "callbacks.", "data.root",
              "data.download", "data.verify", "trainer.enable_", "trainer.log_every_n_steps")  # fmt: skip
GROUP_MAX, TAG_MAX = 128, 64  # characters W&B accepts


def _watching_only(key: str) -> bool:
    return any(key.startswith(n) if n[-1] in "._" else key == n for n in NOT_RECIPE)


def run_labels(choices: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """The W&B group and tags a run gets by default, from its config-group choices and its
    command-line overrides. group: the recipe up to the seed (data/model/optim/scheduler plus the
    value overrides that change what is computed), so W&B's workspace draws one line per recipe,
    averaged over seeds. tags: one `group:option` per recipe group, to filter a task's runs."""
    picked = [(g, choices[g]) for g in RECIPE_GROUPS if isinstance(choices.get(g), str)]
    # value overrides (optim.lr=0.1), not group choices (optim=adamw, hydra/x=y)
    _, value_overrides = split_overrides(list(overrides))
    values = [o.lstrip("+~") for o in value_overrides
              if "=" in o and not _watching_only(override_key(o))]  # fmt: skip
    recipe = "/".join(option for _, option in picked)
    group = " ".join([recipe, *sorted(values)]).strip()
    if len(group) > GROUP_MAX:  # still unique: a hash of the whole name
        group = group[: GROUP_MAX - 9] + "~" + hashlib.sha1(group.encode()).hexdigest()[:8]
    return {"group": group or None, "tags": [f"{g}:{option}"[:TAG_MAX] for g, option in picked]}


def labelled(settings: Mapping[str, Any], labels: Mapping[str, Any]) -> dict[str, Any]:
    """settings with the default labels filled in: a group set in the config wins; tags are the
    configured ones followed by the default ones."""
    tags = list(settings.get("tags") or [])
    return {
        **settings,
        "group": settings.get("group") or labels.get("group"),
        "tags": tags + [t for t in labels.get("tags", []) if t not in tags],
    }


def make_wandb_logger(
    settings: dict[str, Any],
    run_dir: Path,
    run_id: str,
    config: dict[str, Any],
    replayed: Replayed | None = None,
) -> tuple[Any | None, str]:
    """(a started WandbLogger or None when W&B is disabled, the mode it logs in).

    Online mode that cannot start (server unreachable within logger.wandb.init_timeout seconds,
    key rejected) falls back to offline, with the same run id, and says how to upload later."""
    mode = resolve_mode(settings.get("mode"))
    if mode == "disabled":
        return None, mode
    import wandb

    def start(mode: str) -> RunWandbLogger:
        logger = RunWandbLogger(
            save_dir=str(run_dir),
            id=run_id,
            name=redact(settings.get("name")),
            project=settings.get("project"),
            entity=settings.get("entity"),
            group=redact(settings.get("group")),
            tags=redact(list(settings.get("tags") or [])),
            job_type=settings.get("job_type"),
            log_model=log_model_arg(settings.get("log_model")),
            mode=mode,
            config=config,
            # quiet: no version banner and no closing history/summary tables (the run's own
            # closing block replaces them); W&B's warnings and errors still print.
            settings=wandb.Settings(init_timeout=settings.get("init_timeout") or 90, quiet=True),
            replayed=replayed,
        )
        with _redacted_argv():  # W&B records the command line in the run's metadata
            logger.experiment  # noqa: B018 (starts the W&B run now, where a failure can be handled)
        return logger

    if mode == "online":
        try:
            return start("online"), "online"
        except Exception as e:  # wandb.errors.CommError, AuthenticationError, a timeout...
            wandb.teardown()  # the failed run still holds its id in W&B's service process
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            log.warning(
                "W&B: could not start online (%s: %s). Logging offline instead; upload later "
                "with: %s",
                type(e).__name__,
                redact(reason),
                sync_hint(run_dir),
            )
    return start("offline"), "offline"


@contextlib.contextmanager
def _redacted_argv() -> Iterator[None]:
    argv = sys.argv
    sys.argv = redact(list(argv))
    try:
        yield
    finally:
        sys.argv = argv


def finish(exit_code: int, preempted: bool = False) -> None:
    """Close the W&B run if one is open (also after an error). A pre-empted run is marked so in
    W&B: it is expected back, resumed under the same id."""
    if "wandb" not in sys.modules:
        return
    import wandb

    if wandb.run is not None:
        if preempted:
            wandb.run.mark_preempting()
        wandb.finish(exit_code=exit_code)
