"""W&B for a run, set up so that it never blocks: no prompt, no hang, no crash for want of a key.

Mode, first match wins: logger.wandb.mode if set; $WANDB_MODE if set; "online" when an API key is
configured ($WANDB_API_KEY, an identity-token file, or a ~/.netrc entry for the W&B host); else
"offline", whose files land in RUN_DIR/wandb/offline-run-*/ for a later `wandb sync`.
"""

from __future__ import annotations

import logging
import netrc
import os
import secrets
import string
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.errors import ConfigError

log = logging.getLogger(__name__)
MODES = ("online", "offline", "disabled")
ID_FILE = "wandb_id.txt"  # beside the checkpoints: a resumed run logs to the same W&B run


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


def run_id(checkpoint_dir: Path, resume_from: Path | None) -> str:
    """The W&B id saved beside the checkpoint being resumed, else this run's saved id, else new."""
    for folder in ([resume_from.parent] if resume_from else []) + [checkpoint_dir]:
        saved = folder / ID_FILE
        if saved.is_file() and saved.read_text().strip():
            return saved.read_text().strip()
    alphabet = string.ascii_lowercase + string.digits  # W&B's own id alphabet and length
    return "".join(secrets.choice(alphabet) for _ in range(8))


def make_wandb_logger(
    settings: dict[str, Any], run_dir: Path, run_id: str, config: dict[str, Any]
) -> Any | None:
    """A Lightning WandbLogger, or None when W&B is disabled."""
    mode = resolve_mode(settings.get("mode"))
    if mode == "disabled":
        return None
    from lightning.pytorch.loggers import WandbLogger

    return WandbLogger(
        save_dir=str(run_dir),
        id=run_id,
        project=settings.get("project"),
        entity=settings.get("entity"),
        group=settings.get("group"),
        tags=list(settings.get("tags") or []),
        job_type=settings.get("job_type"),
        mode=mode,
        config=config,
    )


def save_run_id(checkpoint_dir: Path, run_id: str) -> None:
    """Beside the checkpoints, so that resuming from them continues this W&B run (rank zero only:
    every other rank drew its own, unused id)."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    (checkpoint_dir / ID_FILE).write_text(run_id)


def finish(exit_code: int) -> None:
    """Close the W&B run if one is open (also after an error)."""
    import sys

    if "wandb" not in sys.modules:
        return
    import wandb

    if wandb.run is not None:
        wandb.finish(exit_code=exit_code)
