"""The folder of `pix2pix-tf demo`: the only module that knows its file names.

<demo>/data/          the synthetic facades
<demo>/run/           the training work dir (a `WorkDir`)
<demo>/eval_step0/    the untrained network's results (an `EvalDir`)
<demo>/export/        the exported models (an `ExportDir`)
<demo>/demo.json      the run length fixed by the first run's calibration
<demo>/summary.json   the scores before and after, and where everything went
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pix2pix_tf.artifacts.exportdir import ExportDir
from pix2pix_tf.artifacts.folder import Folder
from pix2pix_tf.artifacts.workdir import WorkDir

RECORD_FILE = "demo.json"
SUMMARY_FILE = "summary.json"


@dataclasses.dataclass(frozen=True)
class DemoDir(Folder):
    """Paths inside the demo's folder (nothing is created until written)."""

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def run(self) -> WorkDir:
        return WorkDir(self.root / "run")

    @property
    def untrained_results(self) -> Path:
        return self.root / "eval_step0"

    @property
    def export(self) -> ExportDir:
        return ExportDir(self.root / "export")

    @property
    def record(self) -> Path:
        return self.root / RECORD_FILE

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY_FILE
