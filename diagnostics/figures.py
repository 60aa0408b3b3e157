"""Matplotlib figures from plain arrays: no torch, no Lightning, no global pyplot state (each
function returns its own Figure on an Agg canvas, safe in any process and thread).

Images are numpy arrays (N, H, W, C) with values in [0, 1]; labels are class indices.
(Over 250 lines: every figure the diagnostics draw, sharing the canvas, grid and scale helpers.)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.collections import LineCollection, PatchCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text

RIGHT, WRONG = "#1a7f37", "#cf222e"  # title colour of a correct / a wrong prediction
DPI = 100  # what diagnostics.publish saves at: a mosaic is one canvas pixel per output pixel


def _figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    fig = Figure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, target: Any) -> None:
    """Write fig as a PNG at DPI. zlib level 1: these pictures are mostly flat colour, and level 6
    (the default) spent several times longer for files a few percent smaller."""
    fig.savefig(target, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})


def _rgb(images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) in [0, 1], C = 1 or 3 -> (N, H, W, 3): grey images as three equal channels
    (what imshow's grey colour map showed for vmin 0, vmax 1)."""
    images = np.clip(np.asarray(images, dtype=np.float32), 0, 1)
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images[..., :3]


def _grid_shape(n: int, max_columns: int) -> tuple[int, int]:
    columns = min(n, max_columns)
    return -(-n // columns), columns


class Pixels(Artist):
    """An RGBA image (H, W, 4) uint8 with its bottom-left corner at figure pixel (x, y) (at DPI;
    the default fills the figure), copied to the renderer as it is when the figure is saved at
    the DPI it was made for (imshow and figimage resample every pixel even then); scaled to the
    nearest pixel at any other DPI."""

    def __init__(self, rgba: np.ndarray, x: float = 0, y: float = 0) -> None:
        super().__init__()
        self.rgba, self.x, self.y = rgba, x, y

    def draw(self, renderer: Any) -> None:
        image = self.rgba
        scale = renderer.dpi / DPI
        if scale != 1:
            rows = (np.arange(round(image.shape[0] * scale)) / scale).astype(int)
            columns = (np.arange(round(image.shape[1] * scale)) / scale).astype(int)
            image = image[rows][:, columns]
        gc = renderer.new_gc()
        x, y = round(self.x * scale), round(self.y * scale)
        renderer.draw_image(gc, x, y, np.ascontiguousarray(image[::-1]))  # rows bottom-up
        gc.restore()


class Mosaic:
    """Tiles laid out on one RGB canvas drawn by one imshow in one axes, at one canvas pixel per
    output pixel (DPI 100): a grid costs one image, however many tiles it has. Coordinates are
    canvas pixels, y down. Each tile is scaled up by a whole factor (nearest neighbour) to about
    `target` pixels a side."""

    def __init__(self, tile_hw: tuple[int, int], rows: int, columns: int, cell: tuple[int, int],
                 top: int, left: int = 0, band: int = 22, min_width: int = 0, target: int = 96):  # fmt: skip
        h, w = tile_hw
        self.scale = max(1, target // max(h, w))
        self.tile = (h * self.scale, w * self.scale)  # (height, width) in pixels
        self.cell = (max(cell[0], self.tile[0] + band + 8), max(cell[1], self.tile[1] + 8))
        self.band, self.top = band, top
        grid_w = left + columns * self.cell[1]
        self.width = max(grid_w, min_width)
        self.left = left + (self.width - grid_w) // 2  # centred when the figure is wider
        self.height = top + rows * self.cell[0]
        # RGBA bytes, opaque white: what Agg draws without converting
        self.canvas = np.full((self.height, self.width, 4), 255, dtype=np.uint8)

    def origin(self, row: int, column: int) -> tuple[int, int]:
        """(x, y) of the tile's top-left pixel."""
        x = self.left + column * self.cell[1] + (self.cell[1] - self.tile[1]) // 2
        return x, self.top + row * self.cell[0] + self.band

    def paste(self, row: int, column: int, tile: np.ndarray) -> tuple[int, int]:
        """Put an (h, w, 3) tile in [0, 1] in its cell, scaled up; returns its origin."""
        x, y = self.origin(row, column)
        big = (tile * 255 + 0.5).astype(np.uint8).repeat(self.scale, 0).repeat(self.scale, 1)
        self.canvas[y : y + self.tile[0], x : x + self.tile[1], :3] = big
        return x, y

    def figure(self) -> tuple[Figure, Any]:
        """The figure (width x height pixels) with the canvas as its background, and one axes
        over it, in canvas coordinates, for labels and frames."""
        fig = _figure(self.width / DPI, self.height / DPI, layout=None)
        fig.add_artist(Pixels(self.canvas))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_xlim(0, self.width)
        ax.set_ylim(self.height, 0)
        return fig, ax

    def frame(self, ax: Any, x: int, y: int, colour: str, width: float) -> None:
        """A rectangle around the tile at (x, y); add_artist, not add_patch: the limits are
        fixed, so there is nothing to autoscale (add_patch's update is a third of the build)."""
        ax.add_artist(Rectangle((x - 0.5, y - 0.5), self.tile[1] + 1, self.tile[0] + 1,
                               fill=False, edgecolor=colour, linewidth=width))  # fmt: skip


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
    image framed in red), and the predicted class's probability if given. One axes: the labels
    are its texts and the frames its patches, in image order."""
    if len(images) == 0:
        fig = _figure(4, 0.6)
        fig.text(0.5, 0.5, f"{title}: none", ha="center", va="center")
        return fig
    images = _rgb(images)
    rows, columns = _grid_shape(len(images), max_columns)
    grid = Mosaic(images.shape[1:3], rows, columns, cell=(150, 130), top=30 if title else 4,
                  min_width=400)  # fmt: skip
    origins = [grid.paste(i // columns, i % columns, image) for i, image in enumerate(images)]
    fig, ax = grid.figure()
    for i, (x, y) in enumerate(origins):
        right = true[i] == predicted[i]
        colour = RIGHT if right else WRONG
        label = class_names[predicted[i]] + ("" if right else f" (true {class_names[true[i]]})")
        if confidence is not None:
            label += f" {confidence[i]:.0%}"
        ax.text(x + grid.tile[1] / 2, y - 4, label, color=colour, fontsize=8, ha="center",
                va="bottom")  # fmt: skip
        grid.frame(ax, x, y, colour, 1 if right else 3)
    if title:
        fig.suptitle(title, fontsize=9, y=1 - 4 / grid.height, va="top")
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
    # Fixed positions instead of a layout engine (which draws the figure several times) and a
    # plain scale axes instead of fig.colorbar (half the drawing time): room for the longest
    # class name at 8 points (~0.07 in a character), the axis labels and the colour scale.
    width = side + 1.0
    left = 0.07 * max(len(c) for c in class_names) + 0.45
    bottom = (left if n > 10 else 0.2) + 0.45  # names written upright when more than 10
    square = min(width - left - 1.4, side - bottom - 0.35)  # the matrix's side, inches
    fig = _figure(width, side, layout=None)
    ax = fig.add_axes((left / width, bottom / side, square / width, square / side))
    _colour_scale(fig, "Blues", left + square + 0.3, bottom + 0.1 * square, 0.8 * square)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(n), class_names, rotation=90 if n > 10 else 0, fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        for i, j in zip(*np.nonzero(counts), strict=True):
            colour = "white" if share[i, j] > 0.5 else "black"
            ax.add_artist(Count(j, i, str(counts[i, j]), fontsize=7, color=colour))
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(
        f"{title}{' ' if title else ''}{int(counts.sum())} examples, accuracy {accuracy:.3f}",
        fontsize=9,
    )
    return fig


class Count(Text):
    """A whole number centred on its position, drawn on Agg from cached images of the digits: one
    image per number. (A Text is laid out and rasterised anew at every draw, ~0.5 ms each: most
    of a confusion matrix's drawing time.) Anything else draws as a plain Text."""

    def draw(self, renderer: Any) -> None:
        text = self.get_text()
        agg = isinstance(renderer, RendererAgg) and self.get_rotation() == 0
        if not (agg and text.isdigit() and self.get_visible()):
            return super().draw(renderer)
        mask = _number_mask(text, self.get_fontsize(), renderer.dpi)  # (h, w) coverage
        h, w = mask.shape
        rgba = np.empty((h, w, 4), dtype=np.uint8)
        rgba[..., :3] = np.round(np.array(to_rgb(self.get_color())) * 255)
        rgba[..., 3] = mask
        x, y = self.get_transform().transform(self.get_unitless_position())  # pixels, y up
        gc = renderer.new_gc()
        gc.set_clip_rectangle(self.get_clip_box())
        renderer.draw_image(gc, round(x - w / 2), round(y - h / 2), rgba[::-1])  # rows bottom-up
        gc.restore()
        self.stale = False
        return None


@functools.cache
def _digit_masks(points: float, dpi: float) -> tuple[tuple[np.ndarray, ...], int]:
    """Agg's coverage (H, A + 4) uint8 of each digit 0-9 at `points`, drawn 2 pixels in, and
    their common advance A in pixels (the digits of matplotlib's default font are equally wide)."""
    from matplotlib.font_manager import FontProperties

    font = FontProperties(size=points)
    probe = RendererAgg(1, 1, dpi)
    ten, _, _ = probe.get_text_width_height_descent("0" * 10, font, ismath=False)
    _, height, descent = probe.get_text_width_height_descent("lp", font, ismath=False)
    advance, rows = round(ten / 10), math.ceil(height) + 2
    masks = []
    for digit in "0123456789":
        canvas = RendererAgg(advance + 4, rows, dpi)
        canvas.draw_text(canvas.new_gc(), 2, rows - 1 - descent, digit, font, 0)  # y: baseline
        masks.append(np.asarray(canvas.buffer_rgba())[..., 3].copy())
    return tuple(masks), advance


@functools.lru_cache(maxsize=4096)
def _number_mask(digits: str, points: float, dpi: float) -> np.ndarray:
    """Coverage (H, W) uint8 of a whole number: its digits' images side by side at their advance."""
    masks, advance = _digit_masks(points, dpi)
    rows, width = masks[0].shape
    out = np.zeros((rows, advance * (len(digits) - 1) + width), dtype=np.uint8)
    for i, digit in enumerate(digits):
        part = out[:, i * advance : i * advance + width]
        np.maximum(part, masks[int(digit)], out=part)
    return out


def _colour_scale(fig: Figure, cmap: str, x: float, y: float, height: float) -> None:
    """A vertical colour scale from 0 (bottom) to 1, 0.2 inch wide, its bottom-left corner at
    (x, y) inches, ticked every 0.2 and labelled: the pixels of one image and a few texts (an
    axes with its ticks, which fig.colorbar also makes, was a third of a confusion matrix's
    drawing)."""
    rows, columns = round(height * DPI), round(0.2 * DPI)
    strip = colormaps[cmap](np.linspace(1, 0, rows), bytes=True)  # (rows, 4), top first
    fig.add_artist(Pixels(np.repeat(strip[:, None], columns, axis=1), x * DPI, y * DPI))
    w, h = fig.get_size_inches()
    box = Rectangle((x / w, y / h), 0.2 / w, height / h, transform=fig.transFigure, fill=False,
                    linewidth=0.8)  # fmt: skip
    fig.add_artist(box)
    ticks = np.linspace(0, 1, 6)
    marks = [[((x + 0.2) / w, (y + v * height) / h), ((x + 0.25) / w, (y + v * height) / h)]
             for v in ticks]  # fmt: skip
    fig.add_artist(LineCollection(marks, colors="black", linewidths=0.8, transform=fig.transFigure))
    for v in ticks:
        fig.text((x + 0.3) / w, (y + v * height) / h, f"{v:.1f}", va="center", fontsize=10)
    fig.text((x + 0.7) / w, (y + height / 2) / h, "share of the true class", rotation=90,
             va="center", ha="center")  # fmt: skip


def _coloured(m: np.ndarray) -> np.ndarray:
    """One attribution map (H, W) -> (H, W, 3): with negative values red (for the predicted
    class) and blue (against), symmetric around zero; else dark to bright; scaled to its own
    largest magnitude."""
    top = float(np.abs(m).max()) or 1.0
    if m.min() < 0:
        return colormaps["bwr"]((m / top + 1) / 2)[..., :3]
    return colormaps["inferno"](m / top)[..., :3]


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
    images = _rgb(images)
    n = len(images)
    grid = Mosaic(images.shape[1:3], 1 + len(maps), n, cell=(140, 130), top=0, left=24)
    for i in range(n):
        grid.paste(0, i, images[i])
        for row, values in enumerate(maps.values(), start=1):
            grid.paste(row, i, _coloured(np.asarray(values[i], dtype=np.float32)))
    fig, ax = grid.figure()
    for i in range(n):
        right = true[i] == predicted[i]
        x, y = grid.origin(0, i)
        label = class_names[predicted[i]] + ("" if right else f" (true {class_names[true[i]]})")
        ax.text(x + grid.tile[1] / 2, y - 4, label, color=RIGHT if right else WRONG, fontsize=8,
                ha="center", va="bottom")  # fmt: skip
        for row in range(1 + len(maps)):
            grid.frame(ax, *grid.origin(row, i), "black", 0.8)
    for row, name in enumerate(["image", *maps]):
        _, y = grid.origin(row, 0)
        ax.text(grid.left - 6, y + grid.tile[0] / 2, name, fontsize=8, rotation=90, ha="right",
                va="center")  # fmt: skip
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
    # One x unit is one character's advance, so a line's words, joined by single spaces into one
    # Text, sit at their columns: one text and one collection of shadings per figure, not a
    # text with a box per word.
    width = columns * _char_width(7)  # inches
    fig = Figure(figsize=(width + 0.2, 0.2 * len(lines) + 0.45))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.1 / (width + 0.2), 0.02, width / (width + 0.2), 0.96))
    ax.set_xlim(-margin, used)
    ax.set_ylim(len(lines) - 0.5, -1.5)
    ax.axis("off")
    text = {"fontsize": 7, "family": "monospace", "va": "center"}
    ax.text(-margin, -1, "predicted (true)  tokens: red pushes towards the predicted class, blue away (gradient x input)", color="#555", **text)  # fmt: skip
    boxes, shades = [], []
    pad = 0.2  # characters of shading either side of a word
    for y, (label, wrong, row) in enumerate(lines):
        ax.text(-margin, y, label, color=WRONG if wrong else RIGHT, **text)
        if row:
            ax.text(row[0][0], y, " ".join(word for _, word, _ in row), **text)
        for column, word, value in row:
            boxes.append(Rectangle((column - pad, y - 0.42), len(word) + 2 * pad, 0.84))
            shades.append(_shade(value))
    ax.add_collection(PatchCollection(boxes, facecolors=shades, edgecolors="none", zorder=0))
    return fig


@functools.cache
def _char_width(points: float) -> float:
    """Inches a character of matplotlib's monospace font advances at `points` points, as Agg
    draws it at DPI (which rounds each advance to whole pixels)."""
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    font = FontProperties(family="monospace", size=points)
    w, _, _ = RendererAgg(1, 1, DPI).get_text_width_height_descent("0" * 100, font, ismath=False)
    return w / 100 / DPI


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
