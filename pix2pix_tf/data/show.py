"""A picture of what the networks will see: input | target after preprocessing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pix2pix_tf.artifacts.files import atomic_file  # noqa: E402
from pix2pix_tf.config import DataConfig  # noqa: E402
from pix2pix_tf.data.files import find_pairs  # noqa: E402
from pix2pix_tf.data.pipeline import train_dataset  # noqa: E402
from pix2pix_tf.errors import Pix2PixError  # noqa: E402

_FORMATS = (".png", ".jpg", ".jpeg", ".pdf", ".svg")  # what matplotlib writes without extra packages


def show(
    root: str | Path, out: str | Path, cfg: DataConfig, split: str = "train", count: int = 4, seed: int = 0
) -> Path:
    """Saves a grid of `count` (input | target) pairs after train-time jitter.

    Returns:
        The path of the written PNG.
    """
    if not isinstance(count, int) or count < 1:
        raise Pix2PixError(f"count must be a whole number >= 1; got {count!r}")
    out = Path(out)
    if out.is_dir():
        raise Pix2PixError(f"{out} is a folder; --out takes the image file to write, e.g. {out / 'grid.png'}")
    if out.suffix.lower() not in _FORMATS:
        raise Pix2PixError(f"{out}: --out must end in {', '.join(_FORMATS)}; got {out.suffix or 'no extension'!r}")
    pairs = find_pairs(root, split, cfg)
    batches = train_dataset(pairs, dataclasses.replace(cfg, batch_size=1), seed=seed).take(count)
    fig, axes = plt.subplots(count, 2, figsize=(5, 2.5 * count), squeeze=False)
    cmap = "gray" if cfg.channels == 1 else None
    for row, (inp, tgt) in zip(axes, batches):
        for ax, image, title in zip(row, (inp[0], tgt[0]), ("input", "target")):
            ax.imshow((image.numpy().squeeze() + 1) / 2, cmap=cmap, vmin=0, vmax=1)
            ax.set_title(title)
            ax.axis("off")
    fig.suptitle(f"{root} [{split}] {cfg.direction}, {cfg.preprocess}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_file(out, "the grid") as tmp:
            fig.savefig(tmp, dpi=80, format=out.suffix.lower().lstrip(".").replace("jpg", "jpeg"))
    finally:
        plt.close(fig)
    print(f"wrote {out}")
    return out
