"""evaluate's results folder: the only module that knows its file names.

    <results>/metrics.json                 the scores: means and one row per image
    <results>/index.html                   the results page
    <results>/images/<name>_<kind>.png     kind in input, output, target
    <results>/.pix2pix_tf_eval             marker: evaluate wrote this folder and may replace it

By default the folder is the work dir's `WorkDir.evaluation(split, step)`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pix2pix_tf.artifacts.folder import Folder

MARKER = ".pix2pix_tf_eval"
METRICS_FILE = "metrics.json"
PAGE_FILE = "index.html"
IMAGES_DIR = "images"


@dataclasses.dataclass(frozen=True)
class EvalDir(Folder):
    """Paths inside a results folder of `evaluate` (nothing is created until written)."""

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def page(self) -> Path:
        return self.root / PAGE_FILE

    @property
    def images(self) -> Path:
        return self.root / IMAGES_DIR

    @staticmethod
    def image_link(name: str, kind: str) -> str:
        """The page's relative link to image `name`'s `kind` (input, output or target)."""
        return f"{IMAGES_DIR}/{name}_{kind}.png"

    def image(self, name: str, kind: str) -> Path:
        return self.root / self.image_link(name, kind)

    def written_before_markers(self) -> bool:
        """True for results written before evaluate left MARKER: their metrics and page."""
        return self.metrics.is_file() and self.page.is_file()
