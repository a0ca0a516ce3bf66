"""Pictures a reader of a run wants: images side by side, sample grids, D's patch map, the loss curves read right.

Matplotlib figures for notebooks and reports; nothing here trains or writes files.
"""

from __future__ import annotations

import math
import os

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

# At the balance point D says 0.5 for every patch, real or fake: binary cross-entropy
# is then log 2 for each term, so d_real, d_fake, d_total (their halved sum) and g_gan all sit at log 2.
BALANCE = math.log(2)
# What each logged loss is, for the panels' titles.
LOSS_TITLES = {
    "d_total": "d_total: D's loss, ½(BCE real + BCE fake)",
    "g_gan": "g_gan: G fooling D (BCE of fakes as real)",
    "g_l1": "g_l1: mean |G(x) − y| (before ×λ)",
    "g_total": "g_total: g_gan + λ·g_l1",
    "learning_rate": "learning rate (both optimisers)",
    "d_real": "d_real: D's BCE on real pairs (label 1)",
    "d_fake": "d_fake: D's BCE on generated pairs (label 0)",
}
# Panels whose loss is log 2 when D cannot tell real from generated.
ADVERSARIAL = ("d_total", "g_gan", "d_real", "d_fake")


def as_picture(image) -> np.ndarray:
    """An image for `imshow`: uint8 as is, floats in [-1, 1] mapped to [0, 1], grey squeezed."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip((image.astype(np.float32) + 1) / 2, 0, 1)
    return image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image


def show_images(images: dict[str, object], inches: float = 3.2, title: str | None = None) -> plt.Figure:
    """One row of images under their titles, each `inches` wide (pixels are not interpolated).

    Args:
        images: {title: image}, uint8 pixels or floats in [-1, 1], (S, S, C) or (S, S).
        inches: width of each panel; 3.2 in at the notebook's 100 dpi is 320 px.
        title: a line above the row.
    """
    fig, axes = plt.subplots(1, len(images), figsize=(inches * len(images), inches + 0.5), squeeze=False)
    for ax, (name, image) in zip(axes[0], images.items(), strict=True):
        ax.imshow(as_picture(image), cmap="gray", interpolation="nearest")
        ax.set_title(name)
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_patch_map(ax: plt.Axes, image, probabilities: np.ndarray, title: str = "") -> None:
    """Draws `image` with D's per-patch probability of "real" over it (see `models.patch_probabilities`).

    Each cell of the P×P map covers the image evenly for display; the patch it judges
    is its receptive field, larger than the cell and overlapping its neighbours.
    """
    picture = as_picture(image)
    size = picture.shape[0]
    ax.imshow(picture, cmap="gray")
    shown = ax.imshow(
        probabilities, cmap="RdYlGn", vmin=0, vmax=1, alpha=0.55, extent=(0, size, size, 0), interpolation="nearest"
    )
    ax.set_title(f"{title}\nmean P(real) {float(np.mean(probabilities)):.2f}" if title else "")
    ax.axis("off")
    plt.colorbar(shown, ax=ax, fraction=0.046, pad=0.02, label="P(real)")


def plot_losses(
    scalars: dict[str, tuple[list[int], list[float]]],
    tags=("d_total", "g_gan", "g_l1", "g_total", "learning_rate"),
    window: int = 1,
) -> plt.Figure:
    """The logged losses and learning rate by step, with log 2 marked where it is the balance point.

    Args:
        scalars: {tag: (steps, values)}, as `WorkDir.read_scalars` returns them.
        tags: which panels, in order; tags the run did not log are left out.
        window: above 1, each loss panel also draws the running mean over this many
            logged points (the raw curve stays, fainter): one batch's GAN losses
            jump from step to step, and the trend is what to compare with log 2.
    """
    tags = [t for t in tags if t in scalars]
    columns = min(len(tags), 3)
    rows = math.ceil(len(tags) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.4 * rows), squeeze=False)
    for ax, tag in zip(axes.flat, tags):
        steps, values = scalars[tag]
        smoothed = window > 1 and tag != "learning_rate" and len(values) >= window
        ax.plot(steps, values, lw=1, alpha=0.35 if smoothed else 1.0)
        if smoothed:
            mean = np.convolve(values, np.ones(window) / window, mode="valid")
            ax.plot(steps[window // 2 : window // 2 + len(mean)], mean, lw=1.8, color="C0", label=f"mean of {window}")
        if tag in ADVERSARIAL:
            ax.axhline(BALANCE, color="grey", ls="--", lw=1, label="log 2 ≈ 0.69: D cannot tell")
        if smoothed or tag in ADVERSARIAL:
            ax.legend(loc="upper right", fontsize=8)
        if tag == "learning_rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
        ax.set_title(LOSS_TITLES.get(tag, tag), fontsize=10)
        ax.set_xlabel("step")
    for ax in axes.flat[len(tags) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def show_sample_grid(grid, title: str = "", inches: float = 6.4, columns=("input", "output", "target")) -> plt.Figure:
    """A sample grid saved by training (`WorkDir.sample(step)`), large, its columns named.

    Args:
        grid: the grid image (a path, a PIL image or a uint8 array): one row per
            example, the images of each row side by side in `columns` order.
        title: a line above the grid, e.g. the step it was saved at.
        inches: width of the whole grid; 6.4 in at the notebook's 100 dpi is 640 px.
        columns: what each column of the grid shows.
    """
    if isinstance(grid, str | os.PathLike):
        with Image.open(grid) as opened:
            grid = np.asarray(opened.convert("RGB"))
    picture = as_picture(np.asarray(grid))
    height, width = picture.shape[:2]
    fig, ax = plt.subplots(figsize=(inches, inches * height / width + 0.6))
    ax.imshow(picture, interpolation="nearest")
    cell = width / len(columns)
    ax.set_xticks([cell * (i + 0.5) for i in range(len(columns))], columns)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title, pad=22)
    fig.tight_layout()
    return fig
