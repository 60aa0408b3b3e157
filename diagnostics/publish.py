"""Where pictures go: a PNG file in RUN_DIR/pictures/ (always, for offline use and the HTML
report) and, when the run has a W&B logger, the same image or table in W&B at the current step;
a TensorBoard logger gets the images (TensorBoard has no tables). Called on global rank zero only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PICTURES_DIR = "pictures"


def pictures_dir(trainer: L.Trainer) -> Path:
    return Path(trainer.default_root_dir) / PICTURES_DIR


def _wandb_loggers(trainer: L.Trainer) -> list[WandbLogger]:
    return [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]


def publish_figure(trainer: L.Trainer, name: str, kind: str, fig: Figure) -> Path:
    """Save fig as RUN_DIR/pictures/{name}_{kind}.png and log it to W&B and TensorBoard as
    pictures/{kind}."""
    folder = pictures_dir(trainer)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}_{kind}.png"
    tmp = path.with_suffix(".tmp.png")
    from diagnostics.figures import save_png  # matplotlib: only once a picture is drawn

    save_png(fig, tmp)
    tmp.replace(path)  # a reader (the report) never sees half a file
    for logger in _wandb_loggers(trainer):
        logger.log_image(
            f"{PICTURES_DIR}/{kind}", [str(path)], step=trainer.global_step, caption=[name]
        )
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):  # the PNG's pixels: no second drawing
            import numpy as np
            from PIL import Image

            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))  # (H, W, 3) uint8
            logger.experiment.add_image(
                f"{PICTURES_DIR}/{kind}", pixels, global_step=trainer.global_step, dataformats="HWC"
            )
    return path


def publish_table(
    trainer: L.Trainer,
    kind: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    html: Sequence[str] = (),
) -> None:
    """A W&B table pictures/{kind} (W&B only: a PNG of the same content is the offline copy).
    The columns named in `html` hold HTML strings, shown rendered."""
    loggers = _wandb_loggers(trainer)
    if not loggers:
        return
    import wandb

    rendered = [columns.index(c) for c in html]
    data = [[wandb.Html(v) if i in rendered else v for i, v in enumerate(r)] for r in rows]
    for logger in loggers:
        logger.log_table(
            f"{PICTURES_DIR}/{kind}", columns=list(columns), data=data, step=trainer.global_step
        )
