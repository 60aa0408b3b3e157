"""Matplotlib figures from plain arrays: no torch, no Lightning, no global pyplot state (each
function returns its own Figure on an Agg canvas, safe in any process and thread).

Images are numpy arrays (N, H, W, C) with values in [0, 1]; labels are class indices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

RIGHT, WRONG = "#1a7f37", "#cf222e"  # title colour of a correct / a wrong prediction


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _show(ax, image: np.ndarray) -> None:
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _grid_shape(n: int, max_columns: int) -> tuple[int, int]:
    columns = min(n, max_columns)
    return -(-n // columns), columns


def prediction_grid(
    images: np.ndarray,
    true: Sequence[int],
    predicted: Sequence[int],
    class_names: Sequence[str],
    confidence: Sequence[float] | None = None,
    title: str = "",
    max_columns: int = 8,
) -> Figure:
    """Images titled with the predicted label (and the true one where they differ, in red, the
    image framed in red), and the predicted class's probability if given."""
    if len(images) == 0:
        fig = _figure(4, 0.6)
        fig.text(0.5, 0.5, f"{title}: none", ha="center", va="center")
        return fig
    rows, columns = _grid_shape(len(images), max_columns)
    fig = _figure(max(1.3 * columns, 4.0), 1.5 * rows + 0.3)  # room for the title
    axes = fig.subplots(rows, columns, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(images):
            ax.axis("off")
            continue
        _show(ax, images[i])
        right = true[i] == predicted[i]
        colour = RIGHT if right else WRONG
        label = class_names[predicted[i]] + ("" if right else f" (true {class_names[true[i]]})")
        if confidence is not None:
            label += f" {confidence[i]:.0%}"
        ax.set_title(label, color=colour, fontsize=8)
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(1 if right else 3)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def confusion_matrix(counts: np.ndarray, class_names: Sequence[str], title: str = "") -> Figure:
    """counts[i, j]: examples of true class i predicted as j. Colour is the share of the row
    (recall per class), so rare classes read as well as common ones; counts are written in the
    cells when there are at most 20 classes."""
    counts = np.asarray(counts)
    n = len(class_names)
    if counts.shape != (n, n):
        raise ValueError(
            f"counts has shape {counts.shape}, expected ({n}, {n}) for the class names"
        )
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    side = min(12.0, 2.0 + 0.45 * n)
    fig = _figure(side + 1.0, side)
    ax = fig.subplots()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=90 if n > 10 else 0, fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    colour = "white" if share[i, j] > 0.5 else "black"
                    ax.text(
                        j, i, int(counts[i, j]), ha="center", va="center", fontsize=7, color=colour
                    )
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(
        f"{title}{' ' if title else ''}{int(counts.sum())} examples, accuracy {accuracy:.3f}",
        fontsize=9,
    )
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the true class")
    return fig


def saliency(
    images: np.ndarray,
    maps: Mapping[str, np.ndarray],
    true: Sequence[int],
    predicted: Sequence[int],
    class_names: Sequence[str],
) -> Figure:
    """One column per image: the image, then one row per attribution map (N, H, W). A map with
    negative values is drawn red (for the predicted class) and blue (against), symmetric around
    zero; a non-negative one from dark to bright. Each map is scaled per image."""
    n = len(images)
    fig = _figure(1.3 * n, 1.4 * (1 + len(maps)))
    axes = fig.subplots(1 + len(maps), n, squeeze=False)
    for i in range(n):
        _show(axes[0, i], images[i])
        right = true[i] == predicted[i]
        axes[0, i].set_title(
            class_names[predicted[i]] + ("" if right else f" (true {class_names[true[i]]})"),
            color=RIGHT if right else WRONG,
            fontsize=8,
        )
        for row, (name, values) in enumerate(maps.items(), start=1):
            ax = axes[row, i]
            m = values[i]
            top = float(np.abs(m).max()) or 1.0
            if m.min() < 0:
                ax.imshow(m, cmap="bwr", vmin=-top, vmax=top, interpolation="nearest")
            else:
                ax.imshow(m, cmap="inferno", vmin=0, vmax=top, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(name, fontsize=8)
    axes[0, 0].set_ylabel("image", fontsize=8)
    return fig


def token_attributions(
    sentences: Sequence[Sequence[str]],
    scores: Sequence[Sequence[float]],
    true: Sequence[int],
    predicted: Sequence[int],
    class_names: Sequence[str],
    width: int = 110,
) -> Figure:
    """Each sentence with its tokens shaded by attribution: red pushes towards the predicted
    class, blue away from it; scaled per sentence. Monospaced, wrapped at `width` characters."""
    lines: list[tuple[str, bool, list[tuple[int, str, float]]]] = []  # label, wrong, tokens
    for words, s, t, p in zip(sentences, scores, true, predicted, strict=True):
        top = max((abs(v) for v in s), default=0.0) or 1.0
        label = class_names[p] + ("" if t == p else f" (true {class_names[t]})")
        row: list[tuple[int, str, float]] = []
        column = 0
        for word, value in zip(words, s, strict=True):
            if column and column + len(word) > width:
                lines.append((label, t != p, row))
                label, row, column = "", [], 0
            row.append((column, word, value / top))
            column += len(word) + 1
        lines.append((label, t != p, row))
    margin = max(len(label) for label, _, _ in lines) + 2  # the label column, in characters
    used = max((c + len(w) for _, _, row in lines for c, w, _ in row), default=1)
    columns = margin + used
    fig = Figure(figsize=(0.062 * columns + 0.2, 0.2 * len(lines) + 0.45))  # ~0.06 in a character
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.01, 0.02, 0.98, 0.96))
    ax.set_xlim(-margin, used)
    ax.set_ylim(len(lines) - 0.5, -1.5)
    ax.axis("off")
    text = {"fontsize": 7, "family": "monospace", "va": "center"}
    ax.text(-margin, -1, "predicted (true)  tokens: red pushes towards the predicted class, blue away (gradient x input)", color="#555", **text)  # fmt: skip
    for y, (label, wrong, row) in enumerate(lines):
        ax.text(-margin, y, label, color=WRONG if wrong else RIGHT, **text)
        for column, word, value in row:
            ax.text(
                column,
                y,
                word,
                bbox={"facecolor": _shade(value), "edgecolor": "none", "pad": 0.8},
                **text,
            )
    return fig


def _shade(value: float) -> tuple[float, float, float]:
    """A score in [-1, 1] -> white shaded towards red (positive) or blue (negative)."""
    full = (0.84, 0.15, 0.16) if value > 0 else (0.12, 0.47, 0.71)
    return tuple(1 - abs(value) * (1 - c) for c in full)


def token_html(words: Sequence[str], scores: Sequence[float]) -> str:
    """One sentence as HTML spans shaded like token_attributions (scaled to its largest score)."""
    import html

    top = max((abs(v) for v in scores), default=0.0) or 1.0
    spans = []
    for word, value in zip(words, scores, strict=True):
        r, g, b = (round(255 * c) for c in _shade(value / top))
        spans.append(
            f'<span style="background:rgb({r},{g},{b})" title="{value:.3g}">{html.escape(word)}</span>'
        )
    return " ".join(spans)
