"""The SavedModel of an export: the generator's serving module saved with its signatures.

Written with `tf.saved_model.save` of a `tf.Module`, which stores each variable once
(Keras' `model.export` currently stores them twice, keras-team/keras#23553); or, for an
export made from an earlier one, that one's SavedModel copied unchanged.
"""

from __future__ import annotations

import shutil

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf.artifacts.exportdir import SAVED_MODEL_DIR, ExportDir, SavedModelDir
from pix2pix_tf.config import Config
from pix2pix_tf.inference import load_saved_model
from pix2pix_tf.runtime import quiet_native_output
from pix2pix_tf.signatures import GeneratorModule, signature_functions


def write_saved_model(
    export_dir: ExportDir, generator: keras.Model, config: Config, *, stochastic: bool, parameters: int
) -> dict:
    """Saves the generator's SavedModel into `export_dir`, with its config and model card as assets.

    The export's config.json and model_card.json must already be written.

    Args:
        export_dir: the (staging) export folder.
        generator: the trained generator.
        config: its configuration.
        stochastic: also add the stochastic signature (dropout on).
        parameters: the generator's weight count (`count_parameters`), as the model card states it.

    Returns:
        The report's "saved_model" section: its folder, variables' size, parameters and signatures.
    """
    module = GeneratorModule(generator, config, {"config": export_dir.config, "model_card": export_dir.model_card})
    functions = signature_functions(module, stochastic)
    with quiet_native_output():  # "Assets written to: ..." notes
        tf.saved_model.save(module, str(export_dir.saved_model.root), signatures=functions)
    return _section(export_dir.saved_model, parameters, functions)


def copy_saved_model(source: SavedModelDir, export_dir: ExportDir, *, parameters: int) -> dict:
    """Copies an earlier export's SavedModel into `export_dir` byte for byte, its assets included.

    Args:
        source: the earlier export's SavedModel.
        export_dir: the (staging) export folder.
        parameters: the generator's weight count (`count_parameters`).

    Returns:
        The report's "saved_model" section, as `write_saved_model`'s.
    """
    shutil.copytree(source.root, export_dir.saved_model.root)
    return _section(export_dir.saved_model, parameters, load_saved_model(source.root).signatures)


def _section(saved_model: SavedModelDir, parameters: int, signatures) -> dict:
    return {
        "dir": SAVED_MODEL_DIR,
        "variables_bytes": sum(p.stat().st_size for p in saved_model.variables.iterdir()),
        "parameters": parameters,
        "signatures": sorted(signatures),
    }


def count_parameters(generator: keras.Model) -> int:
    """The generator's weights, trainable or not (batch-norm statistics included)."""
    return int(sum(np.prod(v.shape) for v in generator.weights))
