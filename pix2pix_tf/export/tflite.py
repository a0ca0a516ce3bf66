"""TFLite conversion of the generator, each variant checked against the Keras model before it ships.

Models are converted with the batch fixed at 1: with a dynamic batch the transposed
convolutions leave XNNPACK's fast path.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf.artifacts.exportdir import ExportDir
from pix2pix_tf.config import Config
from pix2pix_tf.data.files import find_pairs
from pix2pix_tf.data.pipeline import eval_dataset, train_dataset
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.inference import TFLiteRunner
from pix2pix_tf.runtime import quiet_native_output

# Minimum agreement with the Keras model (PSNR of the outputs, dB) for a variant to ship.
AGREEMENT_GATES = {"float32": 60.0, "float16": 40.0, "int8": 28.0, "dynamic": 28.0}
STOCHASTIC_TFLITE_NOTE = (
    "TFLite models are deterministic only: dropout at inference needs Keras' random seed state, "
    "a variable updated on every call, which TFLite builtin ops cannot express."
)
CALIBRATION_INPUTS = 64  # int8 representative inputs


def convert(generator: keras.Model, variant: str, representative: list[np.ndarray]) -> bytes:
    """The generator as a TFLite model of `variant` (one of config.TFLITE_VARIANTS), batch fixed at 1.

    Args:
        generator: the Keras generator.
        variant: float32, float16, int8 (full-integer, float32 input and output) or dynamic.
        representative: int8 calibration inputs, (1, S, S, C) each.
    """
    # The same layers behind an input with the batch fixed at 1. (A concrete function
    # of the generator keeps dropout's seed variables as READ_VARIABLE ops, which
    # break int8 calibration.)
    source = keras.Input(batch_shape=(1, *generator.input_shape[1:]), name="input_image")
    fixed = keras.Model(source, generator(source, training=False))
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "int8":
        # Full-integer: every op in int8; the model keeps float32 input and output
        # (quantise/dequantise at the ends), so callers use the same pre- and post-processing.
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.representative_dataset = lambda: ([x] for x in representative)
    # The converter prints every captured tensor and its quantisation settings.
    with contextlib.redirect_stdout(io.StringIO()), quiet_native_output(stdout=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "statistics for quantized inputs": I/O stays float32
        return converter.convert()


def psnr(a, b) -> float:
    """PSNR (dB) between two arrays of [-1, 1] images (peak-to-peak 2)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(4.0 / mse))


def _median_latency_ms(runner: TFLiteRunner, image: np.ndarray, runs: int) -> float:
    runner(image[None])  # warm-up: XNNPACK packs weights on the first call
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner(image[None])
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def held_out_inputs(config: Config, data_dir: Path, count: int) -> tuple[np.ndarray, str]:
    """Inputs the model was not trained on (the test or val split), else training images.

    Returns:
        (inputs, the split they come from).
    """
    for split in ("test", "val", "train"):
        try:
            pairs = find_pairs(data_dir, split, config.data)
        except Pix2PixError:
            continue
        batch = next(iter(eval_dataset(pairs, config.data, batch_size=count)))
        return batch[0].numpy(), split
    raise Pix2PixError(f"{data_dir}: no test, val or train split to check the exported models on")


def _representative(config: Config, data_dir: Path, count: int) -> list[np.ndarray]:
    """int8 calibration inputs drawn from the training data, with the training jitter."""
    pairs = find_pairs(data_dir, "train", config.data)
    one = config.replace(data={"batch_size": 1}).data
    return [source.numpy() for source, _ in train_dataset(pairs, one, seed=1234).take(count)]


def export_variants(
    export_dir: ExportDir,
    generator: keras.Model,
    config: Config,
    *,
    variants: tuple[str, ...],
    inputs: np.ndarray,
    data_dir: Path,
    latency_runs: int,
    threads: int,
) -> tuple[list[dict], list[str]]:
    """Converts each variant, checks its outputs against the Keras model's, and writes those that pass.

    Args:
        export_dir: the (staging) export folder.
        generator: the Keras generator.
        config: its configuration.
        variants: TFLite variants to convert.
        inputs: the agreement check's inputs, (N, S, S, C) in [-1, 1].
        data_dir: dataset for int8 calibration.
        latency_runs: timed interpreter calls per variant.
        threads: interpreter threads.

    Returns:
        (the report's row of each variant, notes on variants not shipped).
    """
    reference = generator(inputs, training=False).numpy()
    representative = _representative(config, data_dir, CALIBRATION_INPUTS) if "int8" in variants else []
    results, notes = [], []
    for variant in variants:
        model = convert(generator, variant, representative)
        runner = TFLiteRunner(model, num_threads=threads)
        agreement = psnr(runner(inputs), reference)
        latency = _median_latency_ms(runner, inputs[0], latency_runs)
        gate = AGREEMENT_GATES[variant]
        shipped = agreement >= gate
        if shipped:
            export_dir.tflite(variant).write_bytes(model)
        else:
            notes.append(
                f"{variant} was not shipped: its outputs agree with the Keras model to {agreement:.1f} dB, "
                f"below the {gate:.0f} dB gate."
            )
        results.append(
            {
                "variant": variant,
                "file": export_dir.tflite_name(variant) if shipped else None,
                "bytes": len(model),
                "psnr_db": agreement,
                "gate_db": gate,
                "latency_ms": latency,
                "shipped": shipped,
            }
        )
    if any(r["variant"] == "float16" and r["shipped"] for r in results):
        notes.append(f"{export_dir.tflite_name('float16')} is the default mobile model.")
    return results, notes
