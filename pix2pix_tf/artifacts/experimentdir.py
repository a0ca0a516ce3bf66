"""The folder of `pix2pix-tf experiment`: the only module that knows its file names.

<out>/experiment.json            settings every arm's result depends on (a rerun must match)
<out>/data/facades<S>/           synthetic facades per image size (unless --data is given)
<out>/segmenter<S>/              the FCN-score analogue's judge per size (a `SegmenterDir`)
<out>/arms/<arm>/seed<k>/        a training work dir plus its scores (an `ArmRunDir`)
<out>/results.json, results.md   the tables
<out>/figures/<table>.png        the figures
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pix2pix_tf.artifacts.folder import Folder
from pix2pix_tf.artifacts.workdir import WorkDir

EXPERIMENT_FILE = "experiment.json"
SCORES_FILE = "scores.json"
OUTPUTS_FILE = "figure_outputs.npy"  # the first test outputs, for the figures
RESULTS_FILE = "results.json"
RESULTS_TEXT = "results.md"
FIGURES_DIR = "figures"
SEGMENTER_FILE = "segmenter.keras"
SEGMENTER_RECORD = "segmenter.json"


@dataclasses.dataclass(frozen=True)
class ArmRunDir(WorkDir):
    """One run of an experiment arm: a training work dir, plus the scores once finished."""

    @property
    def scores(self) -> Path:
        return self.root / SCORES_FILE

    @property
    def outputs(self) -> Path:
        return self.root / OUTPUTS_FILE


@dataclasses.dataclass(frozen=True)
class SegmenterDir(Folder):
    """The cached segmenter of one image size: the Keras model and what it was trained for."""

    @property
    def model(self) -> Path:
        return self.root / SEGMENTER_FILE

    @property
    def record(self) -> Path:
        return self.root / SEGMENTER_RECORD


@dataclasses.dataclass(frozen=True)
class ExperimentDir(Folder):
    """Paths inside an experiment folder (nothing is created until written)."""

    @property
    def record(self) -> Path:
        return self.root / EXPERIMENT_FILE

    def data(self, image_size: int) -> Path:
        """Where the synthetic facades at `image_size` go."""
        return self.root / "data" / f"facades{image_size}"

    def segmenter(self, image_size: int) -> SegmenterDir:
        return SegmenterDir(self.root / f"segmenter{image_size}")

    def run(self, arm: str, seed: int) -> ArmRunDir:
        """The run of arm `arm` (its key) with seed `seed`."""
        return ArmRunDir(self.root / "arms" / arm / f"seed{seed}")

    @property
    def results(self) -> Path:
        return self.root / RESULTS_FILE

    @property
    def results_text(self) -> Path:
        return self.root / RESULTS_TEXT

    @property
    def figures(self) -> Path:
        return self.root / FIGURES_DIR

    @staticmethod
    def figure_link(table: str) -> str:
        """The results page's relative link to the figure of `table`."""
        return f"{FIGURES_DIR}/{table}.png"

    def figure(self, table: str) -> Path:
        return self.root / self.figure_link(table)
