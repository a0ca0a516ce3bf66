"""TFLite conversion of the generator, each variant checked against the Keras model before it ships.

Every .tflite file carries two signatures, named as the SavedModel's:

    serving_default   input_image float32 (1, S, S, C) in [-1, 1] -> output_image, the same
    translate_image   image uint8 (1, S, S, C) pixels -> output_image, uint8 pixels

so that an app passes camera pixels and gets pixels back. Models are converted with the
batch fixed at 1: with a dynamic batch the transposed convolutions leave XNNPACK's fast path.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf.artifacts.exportdir import ExportDir
from pix2pix_tf.config import Config
from pix2pix_tf.data.files import find_pairs
from pix2pix_tf.data.pipeline import eval_dataset, to_uint8, train_dataset
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.inference import TFLiteRunner
from pix2pix_tf.runtime import quiet_native_output
from pix2pix_tf.signatures import DEFAULT_SIGNATURE, UINT8_SIGNATURE

# Minimum agreement with the Keras model (PSNR of the outputs, dB) for a variant to ship.
AGREEMENT_GATES = {"float32": 60.0, "float16": 40.0, "int8": 28.0, "dynamic": 28.0}
STOCHASTIC_TFLITE_NOTE = (
    "TFLite models are deterministic only: dropout at inference needs Keras' random seed state, "
    "a variable updated on every call, which TFLite builtin ops cannot express."
)
CALIBRATION_INPUTS = 64  # int8 representative inputs


def declared_signatures(size: int, channels: int) -> dict[str, dict]:
    """The signatures every .tflite file of an export carries, as `signature_details` describes a file's."""

    def signature(input_name: str, dtype: str) -> dict:
        def tensor() -> dict:
            return {"dtype": dtype, "shape": [1, size, size, channels]}

        return {"inputs": {input_name: tensor()}, "outputs": {"output_image": tensor()}}

    return {DEFAULT_SIGNATURE: signature("input_image", "float32"), UINT8_SIGNATURE: signature("image", "uint8")}


def signature_details(model: bytes) -> dict[str, dict]:
    """Each signature of a TFLite model: {key: {"inputs"|"outputs": {name: {"dtype", "shape"}}}}."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)

    def tensors(details: dict) -> dict:
        return {
            name: {"dtype": np.dtype(d["dtype"]).name, "shape": [int(n) for n in d["shape"]]}
            for name, d in details.items()
        }

    details = {}
    for key in sorted(interpreter.get_signature_list()):
        runner = interpreter.get_signature_runner(key)
        details[key] = {"inputs": tensors(runner.get_input_details()), "outputs": tensors(runner.get_output_details())}
    return details


def _pixels_out(images: tf.Tensor) -> tf.Tensor:
    """[-1, 1] -> uint8 pixels, as `to_uint8` but in a form that survives full-integer quantisation.

    `to_uint8`'s round((y + 1) * 127.5) gives ~17 dB against the Keras model once
    quantised to int8 (the quantised ROUND/ADD chain breaks); y * 127.5 + 128 truncated
    by the cast gives ~49 dB. The values are `to_uint8`'s except on exact .5 ties
    (rounded up here, to even there).
    """
    return tf.cast(tf.clip_by_value(images * 127.5 + 128.0, 0.0, 255.0), tf.uint8)


def _signature_functions(generator: keras.Model) -> tuple[tf.Module, dict]:
    """(a module holding the generator's variables, its two TFLite signatures by key), batch fixed at 1."""
    shape = [1, *generator.input_shape[1:]]

    def serving_default(input_image):
        return {"output_image": generator(input_image, training=False)}

    def translate_image(image):
        model_input = tf.cast(image, tf.float32) / 127.5 - 1.0
        return {"output_image": _pixels_out(generator(model_input, training=False))}

    module = tf.Module()
    # Keras 3 variables are no tf.Variables: the module tracks the tf.Variables behind
    # them (as GeneratorModule does) for the SavedModel to hold their values.
    module.tf_variables = [v.value for v in generator.variables]
    functions = {
        DEFAULT_SIGNATURE: tf.function(
            serving_default, input_signature=[tf.TensorSpec(shape, tf.float32, "input_image")], autograph=False
        ),
        UINT8_SIGNATURE: tf.function(
            translate_image, input_signature=[tf.TensorSpec(shape, tf.uint8, "image")], autograph=False
        ),
    }
    return module, {key: function.get_concrete_function() for key, function in functions.items()}


def convert(generator: keras.Model, variant: str, representative: list[np.ndarray]) -> bytes:
    """The generator as a TFLite model of `variant` (one of config.TFLITE_VARIANTS) with its two signatures.

    Args:
        generator: the Keras generator.
        variant: float32, float16, int8 (full-integer; float32 or uint8 input and output
            as each signature declares) or dynamic.
        representative: int8 calibration inputs, (1, S, S, C) each in [-1, 1]; the uint8
            signature is calibrated on the same images as pixels.
    """
    module, functions = _signature_functions(generator)
    with tempfile.TemporaryDirectory(prefix="pix2pix_tflite_") as saved:
        # Through a SavedModel of this module, which names each signature by its key
        # (`from_concrete_functions` names them after the Python functions). The module
        # has no attribute `serve`: the converter takes such a SavedModel for a Keras
        # export and keeps its serving_default signature only.
        with quiet_native_output():
            tf.saved_model.save(module, saved, signatures=functions)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=list(functions))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops
        if variant == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif variant == "dynamic":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        elif variant == "int8":
            # Full-integer: every op in int8; the model keeps each signature's input and
            # output type (quantise/dequantise at the ends), so callers use the same pre-
            # and post-processing as for the float variants.
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.representative_dataset = lambda: _calibration(representative)
        # The converter prints every captured tensor and its quantisation settings.
        with contextlib.redirect_stdout(io.StringIO()), quiet_native_output(stdout=True), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "statistics for quantized inputs": I/O keeps its type
            return converter.convert()


def _calibration(representative: list[np.ndarray]):
    """(signature key, inputs) pairs: each calibration image through both signatures."""
    for image in representative:
        yield DEFAULT_SIGNATURE, {"input_image": image}
        yield UINT8_SIGNATURE, {"image": to_uint8(image).numpy()}


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


def _for_json(db: float) -> float | None:
    """A PSNR for the report: None for identical outputs, as JSON has no infinity."""
    return None if db == float("inf") else db


def _pixel_agreement(runner: TFLiteRunner, pixels: np.ndarray, expected: np.ndarray) -> tuple[float, int]:
    """(PSNR in dB, largest difference in levels) of the uint8 signature's outputs for `pixels` against `expected`."""
    run = runner.interpreter.get_signature_runner(UINT8_SIGNATURE)
    got = np.concatenate([run(image=image[None])["output_image"] for image in pixels]).astype(np.int32)
    # PSNR of the pixels mapped to [-1, 1]: the same figure as over [0, 255] with peak 255.
    return psnr(got / 127.5 - 1.0, expected / 127.5 - 1.0), int(np.abs(got - expected).max())


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
    """Converts each variant, checks both signatures' outputs against the Keras model's, and writes those that pass.

    The float signature's outputs are compared with the Keras model's; the uint8
    signature's, for the same inputs as pixels, with the Keras model's output for those
    pixels through `to_uint8`. A variant ships if both reach its AGREEMENT_GATES entry.

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
    pixels = to_uint8(inputs).numpy()
    pixel_reference = to_uint8(generator(pixels / 127.5 - 1.0, training=False)).numpy().astype(np.int32)
    representative = _representative(config, data_dir, CALIBRATION_INPUTS) if "int8" in variants else []
    results, notes = [], []
    for variant in variants:
        model = convert(generator, variant, representative)
        runner = TFLiteRunner(model, num_threads=threads)
        agreement = psnr(runner(inputs), reference)
        pixel_agreement, max_levels = _pixel_agreement(runner, pixels, pixel_reference)
        latency = _median_latency_ms(runner, inputs[0], latency_runs)
        gate = AGREEMENT_GATES[variant]
        shipped = min(agreement, pixel_agreement) >= gate
        if shipped:
            export_dir.tflite(variant).write_bytes(model)
        else:
            notes.append(
                f"{variant} was not shipped: its outputs agree with the Keras model to {agreement:.1f} dB "
                f"({DEFAULT_SIGNATURE}) and {pixel_agreement:.1f} dB ({UINT8_SIGNATURE}); the gate is {gate:.0f} dB."
            )
        results.append(
            {
                "variant": variant,
                "file": export_dir.tflite_name(variant) if shipped else None,
                "bytes": len(model),
                "psnr_db": _for_json(agreement),
                "uint8_psnr_db": _for_json(pixel_agreement),
                "uint8_max_levels": max_levels,
                "gate_db": gate,
                "latency_ms": latency,
                "shipped": shipped,
                "signatures": signature_details(model),
            }
        )
    if any(r["variant"] == "float16" and r["shipped"] for r in results):
        notes.append(f"{export_dir.tflite_name('float16')} is the default mobile model.")
    return results, notes
