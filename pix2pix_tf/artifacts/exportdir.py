"""The export dir and the SavedModel inside it: the only module that knows their file names.

<export>/saved_model/             a SavedModel (a `SavedModelDir`): saved_model.pb, variables/,
                                  assets/config.json, assets/model_card.json
<export>/generator_<v>.tflite     a TFLite variant v (float32, float16, int8, dynamic)
<export>/config.json              the resolved training configuration
<export>/model_card.json          what the model is, and its evaluation if there is one
<export>/report.md, report.json   the export's checks
<export>/web/                     the static web app (`pix2pix-tf export --web`; a `webdir.WebDir`)
<export>/.pix2pix_tf_export       marker: JSON of the version, step and time of the export
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

from pix2pix_tf.artifacts.files import CONFIG_FILE
from pix2pix_tf.artifacts.folder import Folder
from pix2pix_tf.config import TFLITE_VARIANTS

if TYPE_CHECKING:
    from pix2pix_tf.artifacts.webdir import WebDir

MARKER = ".pix2pix_tf_export"
WEB_DIR = "web"
SAVED_MODEL_DIR = "saved_model"
SAVED_MODEL_FILE = "saved_model.pb"
VARIABLES_DIR = "variables"
ASSETS_DIR = "assets"  # where tf.saved_model.save copies each tf.saved_model.Asset
MODEL_CARD_FILE = "model_card.json"
REPORT_FILE = "report.json"
REPORT_TEXT = "report.md"


@dataclasses.dataclass(frozen=True)
class SavedModelDir(Folder):
    """Paths inside a SavedModel folder, written by export or by anything else."""

    @property
    def graph(self) -> Path:
        return self.root / SAVED_MODEL_FILE

    @property
    def variables(self) -> Path:
        return self.root / VARIABLES_DIR

    @property
    def holds_model(self) -> bool:
        """True if the folder holds a SavedModel (its saved_model.pb)."""
        return self.graph.is_file()

    def asset(self, name: str) -> Path:
        """Where the SavedModel keeps an asset file `name` (e.g. the export's config.json)."""
        return self.root / ASSETS_DIR / name

    @property
    def config(self) -> Path:
        """The training config stored with an export's SavedModel (absent in others)."""
        return self.asset(CONFIG_FILE)


@dataclasses.dataclass(frozen=True)
class ExportDir(Folder):
    """Paths inside an export dir (nothing is created until written)."""

    @property
    def saved_model(self) -> SavedModelDir:
        return SavedModelDir(self.root / SAVED_MODEL_DIR)

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def model_card(self) -> Path:
        return self.root / MODEL_CARD_FILE

    @property
    def report(self) -> Path:
        return self.root / REPORT_FILE

    @property
    def report_text(self) -> Path:
        return self.root / REPORT_TEXT

    @property
    def marker(self) -> Path:
        return self.root / MARKER

    @staticmethod
    def tflite_name(variant: str) -> str:
        """The file name of TFLite variant `variant`, as the report records it."""
        return f"generator_{variant}.tflite"

    def tflite(self, variant: str) -> Path:
        return self.root / self.tflite_name(variant)

    @property
    def variants(self) -> list[str]:
        """The TFLite variants the folder holds, in `config.TFLITE_VARIANTS` order."""
        return [variant for variant in TFLITE_VARIANTS if self.tflite(variant).is_file()]

    @property
    def web(self) -> WebDir:
        """The export's static web app (a `webdir.WebDir`)."""
        from pix2pix_tf.artifacts.webdir import WebDir  # here: webdir names its models as this module does

        return WebDir(self.root / WEB_DIR)

    @property
    def holds_export(self) -> bool:
        """True if the folder holds an export's SavedModel."""
        return self.saved_model.holds_model

    def written_before_markers(self) -> bool:
        """True for an export written before exports carried MARKER: its report and SavedModel."""
        try:
            report = json.loads(self.report.read_text())
        except (OSError, ValueError):
            return False
        return isinstance(report, dict) and {"saved_model", "tflite"} <= report.keys() and self.holds_export
