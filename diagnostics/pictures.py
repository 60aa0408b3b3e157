"""Callbacks that draw pictures of a classifier's predictions: confusion matrices, the most
confident mistakes, a grid of validation images with predicted and true labels, and saliency
(input gradients and integrated gradients for images, gradient x input for token sequences).
(Over 250 lines: the two callbacks share one base class and its example-gathering helpers;
the drawing itself is in diagnostics/figures.py, the attributions in diagnostics/attribution.py.)

Each draws after every `every_n_epochs`-th training epoch and once more at the end of training
(0: only at the end), on a fixed set of validation examples (the first `num_examples` of the
validation loader, which is not shuffled), and publishes to RUN_DIR/pictures/ and W&B
(diagnostics.publish). Drawing happens on global rank zero; the confusion counts are summed over
all ranks first.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
from torch import nn

from harness.numbers import is_int
from harness.protocol import DataTraits, data_dims, normalisation, traits, vocabulary
from lightning_modules.classifier import Classifier

if TYPE_CHECKING:
    from matplotlib.figure import Figure


# Drawing (matplotlib) loads when a picture is first drawn, not when the run starts: the
# training steps before that never need it (nor attributing and publishing: imported where used).
def _figures() -> Any:
    from diagnostics import figures

    return figures


log = logging.getLogger(__name__)


def _check_count(name: str, value: Any, minimum: int) -> None:
    if not is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def first_examples(loader: Any, count: int, pad: int = 0) -> tuple[Any, torch.Tensor]:
    """The first `count` (inputs, labels) of an unshuffled loader of (inputs, labels) batches.
    Inputs are a tensor (images) or (tokens (B, T), lengths (B,)), whose batches are padded to
    their own length: they are padded with `pad` to the longest before joining."""
    xs, ys, have = [], [], 0
    for x, y in loader:
        xs.append(x)
        ys.append(y)
        have += len(y)
        if have >= count:
            break
    if isinstance(xs[0], torch.Tensor):
        return torch.cat(xs)[:count], torch.cat(ys)[:count]
    longest = max(tokens.shape[1] for tokens, _ in xs)
    tokens = torch.cat([nn.functional.pad(t, (0, longest - t.shape[1]), value=pad) for t, _ in xs])
    lengths = torch.cat([n for _, n in xs])
    return (tokens[:count], lengths[:count]), torch.cat(ys)[:count]


def display_images(x: torch.Tensor, datamodule: Any) -> np.ndarray:
    """Model inputs (N, C, H, W) -> (N, H, W, C) in [0, 1]: undo the datamodule's normalisation
    when it says what it was (class attributes mean, std), else stretch each image."""
    mean, std = normalisation(datamodule)
    if mean is not None and std is not None:
        m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
        s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
        x = x * s + m
    else:
        lo = x.amin(dim=(1, 2, 3), keepdim=True)
        hi = x.amax(dim=(1, 2, 3), keepdim=True)
        x = (x - lo) / (hi - lo).clamp_min(1e-12)
    return x.clamp(0, 1).permute(0, 2, 3, 1).detach().cpu().numpy()


def class_names_of(pl_module: L.LightningModule) -> list[str]:
    names = pl_module.hparams.get("class_names")
    return list(names) if names else [str(i) for i in range(pl_module.hparams["num_classes"])]


def confusion_counts(true: torch.Tensor, predicted: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(C, C) int64: [i, j] = how many of true class i were predicted j. A product of one-hot
    matrices rather than bincount, which reads the largest index back to the host on a GPU."""
    classes = torch.arange(num_classes, device=true.device)
    t = (true[:, None] == classes).float()  # (B, C)
    p = (predicted[:, None] == classes).float()  # (B, C)
    with torch.autocast(true.device.type, enabled=False):  # float32: exact up to 2**24 per batch
        return (t.T @ p).round().long()


class PictureCallback(L.Callback):
    """The schedule shared by the picture callbacks; a subclass says whether it applies to the run
    (`applies`) and what it draws (`draw`, which returns {kind: figure})."""

    def __init__(self, every_n_epochs: int = 5, num_examples: int = 16) -> None:
        _check_count("every_n_epochs", every_n_epochs, 0)
        _check_count("num_examples", num_examples, 1)
        self.every_n_epochs = every_n_epochs
        self.num_examples = num_examples
        self.active = True
        self.examples: tuple[Any, torch.Tensor] | None = None
        self._epoch = 0
        self._drawn_at: int | None = None  # global step of the last drawing

    def applies(self, trainer: L.Trainer, pl_module: L.LightningModule) -> str | None:
        """None if this callback can draw for this run, else why not (logged once)."""
        if not isinstance(pl_module, Classifier):
            return f"{type(pl_module).__name__} is not a classifier"
        return None

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Figure]:
        raise NotImplementedError

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        reason = self.applies(trainer, pl_module)
        self.active = reason is None
        if reason and stage == "fit":
            log.info("%s draws nothing in this run: %s", type(self).__name__, reason)

    def fixed_examples(
        self, trainer: L.Trainer, pl_module: L.LightningModule
    ) -> tuple[Any, torch.Tensor]:
        if self.examples is None:
            dm = trainer.datamodule
            pad = data_dims(dm).get("pad_index", 0)  # token data: the <pad> index
            self.examples = first_examples(dm.val_dataloader(), self.num_examples, pad)
        x, y = self.examples
        move = lambda t: t.to(pl_module.device)  # noqa: E731
        return (move(x) if isinstance(x, torch.Tensor) else tuple(map(move, x))), move(y)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch = trainer.current_epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._draw_and_publish(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._drawn_at != trainer.global_step:
            self._draw_and_publish(trainer, pl_module)

    def _draw_and_publish(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from diagnostics import publish

        self._drawn_at = trainer.global_step
        if not (self.active and trainer.is_global_zero):
            return
        was_training = pl_module.training
        pl_module.eval()  # dropout off, batch-norm running statistics: what validation sees
        try:  # cuDNN's recurrent layers refuse a backward pass in eval mode: plain kernels here
            with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
                drawn = self.draw(trainer, pl_module)
        finally:
            pl_module.train(was_training)
        for kind, fig in drawn.items():
            publish.publish_figure(trainer, f"epoch_{self._epoch:03d}", kind, fig)


class Predictions(PictureCallback):
    """Classifiers: the confusion matrix of the whole validation set and the validation set's
    most confident mistakes, both gathered from the logits validation_step returns (no second
    pass, no host sync per batch); for images also a grid of fixed validation examples titled
    with their predicted and true labels. After testing, the same two for the test set (of the
    checkpoint tested): test_confusion.png, test_mistakes.png."""

    def __init__(self, every_n_epochs: int = 5, num_examples: int = 32) -> None:
        super().__init__(every_n_epochs, num_examples)
        self.counts: torch.Tensor | None = None  # (C, C) being counted, on the device
        self.worst: tuple[torch.Tensor, ...] | None = None  # (score, x, y, pred, p) being kept
        self.confusion: torch.Tensor | None = None  # (C, C) of the last complete validation
        self.mistakes: tuple[torch.Tensor, ...] | None = None  # the kept (x, y, pred, p) of it

    def _start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.counts, self.worst = None, None
        if self.active and not trainer.sanity_checking:
            c = pl_module.hparams["num_classes"]
            self.counts = torch.zeros(c, c, dtype=torch.long, device=pl_module.device)

    def _count(self, outputs: Any, batch: Any) -> None:
        if self.counts is None or not isinstance(outputs, torch.Tensor):
            return
        c = self.counts.shape[0]
        x, y = batch
        p, pred = outputs.float().softmax(1).max(1)  # (B,), (B,)
        self.counts += confusion_counts(y, pred, c)
        if isinstance(x, torch.Tensor):  # images: keep the most confident mistakes so far
            score = torch.where(pred != y, p, -1.0)  # right answers rank last
            kept = (score, x, y, pred, p)
            if self.worst is not None:
                kept = tuple(torch.cat(pair) for pair in zip(self.worst, kept, strict=True))
            top = kept[0].topk(min(self.num_examples, len(kept[0]))).indices
            self.worst = tuple(t[top] for t in kept)

    def _finish(self, trainer: L.Trainer) -> torch.Tensor | None:
        if self.counts is None:
            return None
        counts, self.counts = trainer.strategy.reduce(self.counts, reduce_op="sum"), None
        return counts

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start(trainer, pl_module)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:  # fmt: skip
        self._count(outputs, batch)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        counts = self._finish(trainer)
        if counts is not None:
            self.confusion = counts
            self.mistakes = None if self.worst is None else self.worst[1:]

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start(trainer, pl_module)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:  # fmt: skip
        self._count(outputs, batch)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from diagnostics import publish

        counts = self._finish(trainer)
        if counts is None or not trainer.is_global_zero:
            return
        names = class_names_of(pl_module)
        drawn = {"confusion": _figures().confusion_matrix(counts.cpu().numpy(), names, "test:")}
        if self.worst is not None:
            drawn["mistakes"] = self._mistakes_grid(trainer, self.worst[1:], names, "test")
        for kind, fig in drawn.items():
            publish.publish_figure(trainer, "test", kind, fig)

    def _mistakes_grid(
        self, trainer: L.Trainer, kept: tuple[torch.Tensor, ...], names: list[str], split: str
    ) -> Figure:
        x, y, pred, p = kept
        wrong = pred != y
        return _figures().prediction_grid(
            display_images(x[wrong], trainer.datamodule),
            y[wrong].tolist(),
            pred[wrong].tolist(),
            names,
            confidence=p[wrong].tolist(),
            title=f"{split} mistakes, most confident first ({int(wrong.sum())} shown)",
        )

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Figure]:
        names = class_names_of(pl_module)
        drawn = {}
        if traits(trainer.datamodule, DataTraits).input_kind == "image":
            x, y = self.fixed_examples(trainer, pl_module)
            with torch.no_grad():
                pred = pl_module(x).argmax(1)
            wrong = int((pred != y).sum())
            drawn["predictions"] = _figures().prediction_grid(
                display_images(x, trainer.datamodule),
                y.tolist(),
                pred.tolist(),
                names,
                title=f"first validation images: {wrong} of {len(y)} wrong",
            )
        if self.mistakes is not None:
            drawn["mistakes"] = self._mistakes_grid(trainer, self.mistakes, names, "validation")
        if self.confusion is not None:
            drawn["confusion"] = _figures().confusion_matrix(
                self.confusion.cpu().numpy(), names, "validation:"
            )
        return drawn


def saliency_maps(
    model: Any, x: torch.Tensor, target: torch.Tensor, ig_steps: int
) -> dict[str, torch.Tensor]:
    """Two views of what in images x (N, C, H, W) drives logit[target]; each map (N, H, W).
    input gradient: |d logit / d pixel|, largest over channels (Simonyan et al., 2014).
    integrated gradients: signed, summed over channels (Sundararajan et al., 2017)."""
    from diagnostics import attribution

    grads = attribution.input_gradients(model, x, target)
    ig = attribution.integrated_gradients(model, x, target, steps=ig_steps)
    return {"input gradient": grads.abs().amax(1), "integrated gradients": ig.sum(1)}


def token_embedding(net: nn.Module, vocab_size: int) -> nn.Embedding | None:
    """The network's token embedding: its one nn.Embedding with a row per vocabulary entry
    (a position embedding has a row per position instead)."""
    found = [
        m for m in net.modules() if isinstance(m, nn.Embedding) and m.num_embeddings == vocab_size
    ]
    return found[0] if len(found) == 1 else None


class Saliency(PictureCallback):
    """What in a fixed set of validation inputs drives the predicted class.
    Images: input gradients and integrated gradients (baseline: the mean image, `ig_steps`
    points). Token sequences (text classifiers): gradient x input on the token embeddings, drawn
    as shaded sentences, and in W&B also a table with the sentences as shaded HTML."""

    def __init__(self, every_n_epochs: int = 5, num_examples: int = 8, ig_steps: int = 32) -> None:
        super().__init__(every_n_epochs, num_examples)
        _check_count("ig_steps", ig_steps, 1)
        self.ig_steps = ig_steps

    def applies(self, trainer: L.Trainer, pl_module: L.LightningModule) -> str | None:
        reason = super().applies(trainer, pl_module)
        kind = traits(trainer.datamodule, DataTraits).input_kind
        if reason is not None or kind == "image":
            return reason
        if kind == "tokens":
            vocab = vocabulary(trainer.datamodule)
            if vocab is None or token_embedding(pl_module.net, len(vocab)) is None:
                return "no vocabulary, or no single token embedding (nn.Embedding) in the network"
            return None
        return f"saliency is drawn for images and token sequences, this data gives {kind}s"

    def draw(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Figure]:
        from diagnostics import attribution, publish

        x, y = self.fixed_examples(trainer, pl_module)
        with torch.no_grad():
            pred = pl_module(x).argmax(1)
        names = class_names_of(pl_module)
        if isinstance(x, torch.Tensor):
            maps = saliency_maps(pl_module, x, pred, self.ig_steps)
            fig = _figures().saliency(
                display_images(x, trainer.datamodule),
                {name: m.detach().cpu().numpy() for name, m in maps.items()},
                y.tolist(),
                pred.tolist(),
                names,
            )
            return {"saliency": fig}
        tokens, lengths = x  # (N, T), (N,)
        vocab = trainer.datamodule.vocab
        embedding = token_embedding(pl_module.net, len(vocab))
        scores = attribution.token_attributions(pl_module, x, pred, embedding).cpu()  # (N, T)
        n = lengths.tolist()
        words = [vocab.decode(row[:k]) for row, k in zip(tokens.tolist(), n, strict=True)]
        values = [row[:k] for row, k in zip(scores.tolist(), n, strict=True)]
        true, predicted = y.tolist(), pred.tolist()
        rows = [
            [names[t], names[p], _figures().token_html(w, v)]
            for t, p, w, v in zip(true, predicted, words, values, strict=True)
        ]
        publish.publish_table(
            trainer, "saliency_text", ["true", "predicted", "tokens"], rows, html=["tokens"]
        )
        return {"saliency": _figures().token_attributions(words, values, true, predicted, names)}
