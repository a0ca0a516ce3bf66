"""Every on-disk layout, each owned by one module that alone knows its file names.

`workdir` (training: config, checkpoints, run record, logs, samples, evaluations),
`exportdir` (SavedModel, TFLite variants, report, model card, marker), `evaldir`
(evaluate's results), `experimentdir` (the paper's tables), `demodir` (the demo),
`datasets` (the markers of the folders the data commands write), `files` (JSON
and config files, atomic writes and staged output folders) and `model_path`
(`open_model`: what a path holds). Standard library and `config` only: no
TensorFlow, so that commands which need none start fast.
"""

from pix2pix_tf.artifacts.demodir import DemoDir
from pix2pix_tf.artifacts.evaldir import EvalDir
from pix2pix_tf.artifacts.experimentdir import ArmRunDir, ExperimentDir, SegmenterDir
from pix2pix_tf.artifacts.exportdir import ExportDir, SavedModelDir
from pix2pix_tf.artifacts.files import load_config, read_json, save_config, write_json
from pix2pix_tf.artifacts.model_path import ModelPath, open_model
from pix2pix_tf.artifacts.workdir import WorkDir, resolve_config

__all__ = [
    "ArmRunDir",
    "DemoDir",
    "EvalDir",
    "ExperimentDir",
    "ExportDir",
    "ModelPath",
    "SavedModelDir",
    "SegmenterDir",
    "WorkDir",
    "load_config",
    "open_model",
    "read_json",
    "resolve_config",
    "save_config",
    "write_json",
]
