"""Export: a SavedModel for serving and TFLite models for mobile, each verified numerically.

Layout of an export directory:

    DIR/saved_model/          signatures serving_default, translate_image, translate_bytes
                              (+ serving_stochastic); assets/config.json, assets/model_card.json
    DIR/generator_<v>.tflite  v in float32, float16, int8, dynamic (batch fixed at 1)
    DIR/config.json           the resolved training configuration
    DIR/report.md, report.json
    DIR/.pix2pix_tf_export    marker: JSON of the version, step and time of the export

An export replaces only a previous export (recognised by the marker), an empty
folder or nothing; see `export` for the folders it refuses.

The SavedModel is written with `tf.saved_model.save` of a `tf.Module`, which stores
each variable once (Keras' `model.export` currently stores them twice,
keras-team/keras#23553). TFLite models are converted with the batch fixed at 1:
with a dynamic batch the transposed convolutions leave XNNPACK's fast path.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import statistics
import time
import types
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf.config import (
    CONFIG_FILE,
    RUN_FILE,
    TFLITE_VARIANTS,
    WORKDIR_ENTRIES,
    Config,
    eval_dir,
    read_json,
    save_config,
    write_json,
)
from pix2pix_tf.data.files import find_pairs
from pix2pix_tf.data.pipeline import eval_dataset, image_to_model, to_uint8, train_dataset
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.inference import NATIVE_SIGNATURE, SAVED_MODEL_DIR, TFLiteRunner, check_threads, load_generator
from pix2pix_tf.models import any_size, generate
from pix2pix_tf.outputs import check_replaceable, staged_output
from pix2pix_tf.runtime import quiet_native_output

# Minimum agreement with the Keras model (PSNR of the outputs, dB) for a variant to ship.
AGREEMENT_GATES = {"float32": 60.0, "float16": 40.0, "int8": 28.0, "dynamic": 28.0}
MARKER = ".pix2pix_tf_export"
STOCHASTIC_TFLITE_NOTE = (
    "TFLite models are deterministic only: dropout at inference needs Keras' random seed state, "
    "a variable updated on every call, which TFLite builtin ops cannot express."
)


class GeneratorModule(tf.Module):
    """The generator with its serving signatures, for `tf.saved_model.save`."""

    def __init__(self, generator: keras.Model, config: Config, assets: dict[str, Path]):
        super().__init__(name="pix2pix_generator")
        # The Keras model is held out of the object graph and its tf.Variables are
        # tracked directly: TF1-style loaders (saved_model_cli run, TensorFlow
        # Serving) cannot restore variables reached through Keras' wrappers
        # (keras-team/keras#20095), and tracking both would store every weight twice
        # (#23553). The list includes dropout's random state, which Keras keeps
        # outside the weights and the stochastic signature updates (its batch-norm
        # updates write back the values they read; see `generate`).
        self._keras = types.SimpleNamespace(generator=generator)
        self.tf_variables = [v.value for v in generator.variables]
        self.size = config.data.image_size
        self.channels = config.data.channels
        self.assets = {name: tf.saved_model.Asset(str(path)) for name, path in assets.items()}
        spec = [self.size, self.size, self.channels]
        self.serve = tf.function(self._serve, input_signature=[tf.TensorSpec([None, *spec], tf.float32, "input_image")])
        self.translate_image = tf.function(
            self._translate_image, input_signature=[tf.TensorSpec([None, *spec], tf.uint8, "image")]
        )
        self.translate_bytes = tf.function(
            self._translate_bytes, input_signature=[tf.TensorSpec([None], tf.string, "image_bytes")]
        )
        self.serve_stochastic = tf.function(
            self._serve_stochastic, input_signature=[tf.TensorSpec([None, *spec], tf.float32, "input_image")]
        )
        self._keras.any_size = any_size(generator)  # the same layers and weights, any H x W
        self.serve_any_size = tf.function(
            self._serve_any_size,
            input_signature=[tf.TensorSpec([None, None, None, self.channels], tf.float32, "input_image")],
        )

    def _serve(self, input_image):
        return {"output_image": self._keras.generator(input_image, training=False)}

    def _serve_any_size(self, input_image):
        # Height and width must be multiples of 2^depth (inference.Translator pads to them).
        return {"output_image": self._keras.any_size(input_image, training=False)}

    def _serve_stochastic(self, input_image):
        return {"output_image": generate(self._keras.generator, input_image, stochastic=True)}

    def _translate_image(self, image):
        x = tf.cast(image, tf.float32) / 127.5 - 1.0
        return {"output_image": to_uint8(self._keras.generator(x, training=False))}

    def _translate_bytes(self, image_bytes):
        def prepare(data):
            # In the graph, for TensorFlow Serving: TensorFlow's decoder (JPEG/PNG/BMP/GIF,
            # no EXIF orientation). `pix2pix-tf serve` decodes by the package's rule instead.
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
            image.set_shape([None, None, 3])
            if self.channels == 1:
                image = tf.image.rgb_to_grayscale(image)
            return image_to_model(image, self.size), tf.shape(image)[:2]

        images, sizes = tf.map_fn(
            prepare,
            image_bytes,
            fn_output_signature=(
                tf.TensorSpec([self.size, self.size, self.channels], tf.float32),
                tf.TensorSpec([2], tf.int32),
            ),
        )
        outputs = self._keras.generator(images, training=False)

        def encode(args):
            output, size = args
            return tf.io.encode_png(to_uint8(output, size=size))

        png = tf.map_fn(encode, (outputs, sizes), fn_output_signature=tf.TensorSpec([], tf.string))
        # The "_bytes" suffix makes TensorFlow Serving's REST API return {"b64": ...}.
        return {"output_bytes": png}


def _tflite_bytes(generator: keras.Model, variant: str, representative: list[np.ndarray]) -> bytes:
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


def _held_out_inputs(config: Config, data_dir: Path, count: int) -> tuple[np.ndarray, str]:
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


def _model_card(config: Config, workdir: Path, step: int, params: int) -> tuple[dict, str]:
    """The model card, with the evaluation of the exported step if there is one.

    Returns:
        (card, a note for the report on where its metrics come from).
    """
    card = {
        "model": "pix2pix U-Net generator (Isola et al., CVPR 2017)",
        "input": {
            "size": [config.data.image_size, config.data.image_size],
            "channels": config.data.channels,
            "range": "[-1, 1] for serving_default; uint8 for translate_image; encoded images for translate_bytes",
        },
        "direction": config.data.direction,
        "steps_trained": step,
        "parameters": params,
        "exported": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    # `evaluate` writes to WORKDIR/eval/<split>_step<N>/ by default; metrics of any
    # other step describe another model.
    for split in ("test", "val"):
        source = eval_dir(workdir, split, step).relative_to(workdir) / "metrics.json"
        if not (workdir / source).is_file():
            continue
        try:
            result = read_json(workdir / source, "evaluation metrics")
            card["evaluation"] = {
                "split": result["split"],
                "count": result["count"],
                "stochastic": result.get("stochastic", False),
                **result["mean"],
                "source": str(source),
            }
        except (Pix2PixError, KeyError, TypeError) as e:
            return card, f"Model card: {workdir / source} is unreadable ({e}), so the card has no metrics."
        return card, f"Model card metrics: {source} ({result['count']} {split} images, step {step})."
    return card, (
        f"Model card: no evaluation of step {step} ({eval_dir(workdir, 'test', step)}/ or "
        f"{eval_dir(workdir, 'val', step).name}/), "
        "so the card has no metrics; run `pix2pix-tf evaluate` and export again to add them."
    )


def _write_report(out: Path, report: dict) -> None:
    write_json(out / "report.json", report)
    lines = [
        f"# Export report: {report['workdir']} at step {report['step']}",
        "",
        f"SavedModel: {report['saved_model']['variables_bytes'] / 1e6:.2f} MB of variables for "
        f"{report['saved_model']['parameters']:,} parameters "
        f"({report['saved_model']['variables_bytes'] / report['saved_model']['parameters']:.2f} bytes each); "
        f"signatures: {', '.join(report['saved_model']['signatures'])}.",
        "",
        f"TFLite: batch fixed at 1 (resize_tensor_input for more), builtin ops only, float32 input and output "
        f"in [-1, 1]. Agreement: PSNR of each model's outputs against the Keras model's on "
        f"{report['agreement_inputs']} {_describe_inputs(report['agreement_split'])}; latency: median of "
        f"{report['latency_runs']} runs, ai-edge-litert, {report['tflite_threads']} threads, "
        f"one {report['image_size']} px image.",
        "",
        "| variant | file | size MB | PSNR vs Keras (dB) | gate (dB) | median latency (ms) | shipped |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in report["tflite"]:
        lines.append(
            f"| {v['variant']} | {v['file'] or '-'} | {v['bytes'] / 1e6:.2f} | {v['psnr_db']:.1f} | "
            f"{v['gate_db']:.0f} | {v['latency_ms']:.1f} | {'yes' if v['shipped'] else 'no'} |"
        )
    lines += ["", *report["notes"], ""]
    (out / "report.md").write_text("\n".join(lines))


def _describe_inputs(split: str) -> str:
    if split == "train":
        return "inputs from the train split (no test or val split found: the model was trained on them)"
    return f"held-out inputs from the {split} split"


def _is_export_before_markers(folder: Path) -> bool:
    """True for an export written before exports carried MARKER: its report and SavedModel."""
    try:
        report = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(report, dict)
        and {"saved_model", "tflite"} <= report.keys()
        and (folder / SAVED_MODEL_DIR / "saved_model.pb").is_file()
    )


def _check_export_dir(out: Path, workdir: Path, data_dir: Path) -> None:
    """Refuses an export folder whose replacement could destroy training runs, data or other files."""
    target, work, data = out.resolve(), workdir.resolve(), data_dir.resolve()
    if target == work or target in work.parents:
        raise Pix2PixError(
            f"{out}: is or holds the work dir {workdir}; export into a folder of its own, e.g. {workdir / 'export'}"
        )
    if work in target.parents and (owned := target.relative_to(work).parts[0]) in WORKDIR_ENTRIES:
        raise Pix2PixError(
            f"{out}: is or is inside {workdir / owned}, which training or evaluation writes; "
            f"export into a folder of its own, e.g. {workdir / 'export'}"
        )
    if target == data or target in data.parents or data in target.parents:
        raise Pix2PixError(f"{out}: is, holds or is inside the dataset {data_dir}; export into a folder of its own")
    check_replaceable(out, MARKER, "pix2pix-tf export", accept=_is_export_before_markers)


def export(
    workdir: str | Path,
    out: str | Path,
    tflite: tuple[str, ...] = TFLITE_VARIANTS,
    stochastic: bool = False,
    data_dir: str | Path | None = None,
    agreement_inputs: int = 8,
    latency_runs: int = 10,
    tflite_threads: int | None = None,
) -> dict:
    """Exports a trained generator as a SavedModel and TFLite models, with a report.

    Everything is written to a staging folder beside `out` and swapped in at the
    end (see `staged_output`): a failure, a full disk or a kill leaves any previous
    export at `out` as it was.

    `out` must be missing, an empty folder or a previous export (it holds MARKER, or
    is an export from before markers). Refused before anything is written: a file,
    any other non-empty folder, the work dir, a folder holding the work dir or the
    dataset or inside the dataset, and the work dir's own folders (WORKDIR_ENTRIES).
    A new folder inside the work dir, such as WORKDIR/export, is fine.

    Args:
        workdir: training work dir (config.json + checkpoints).
        out: export directory.
        tflite: TFLite variants to convert (subset of TFLITE_VARIANTS).
        stochastic: also add the `serving_stochastic` signature (dropout on).
        data_dir: dataset for int8 calibration and the agreement checks; defaults to
            the one recorded by training.
        agreement_inputs: held-out images compared against the Keras model.
        latency_runs: timed interpreter calls per variant.
        tflite_threads: interpreter threads for the checks and the latency (default: the available cores).

    Returns:
        The report (also written as report.json and report.md).

    Raises:
        Pix2PixError: a bad request, a refused `out`, or a full disk.
    """
    workdir, out = Path(workdir), Path(out)
    unknown = set(tflite) - set(TFLITE_VARIANTS)
    if unknown:
        raise Pix2PixError(f"unknown TFLite variant(s) {sorted(unknown)}; choose from {', '.join(TFLITE_VARIANTS)}")
    tflite_threads = check_threads(tflite_threads)
    data_dir = Path(data_dir) if data_dir else _recorded_data_dir(workdir)
    _check_export_dir(out, workdir, data_dir)
    generator, config, step = load_generator(workdir)
    with staged_output(
        out,
        "the export",
        marker=MARKER,
        made_by="pix2pix-tf export",
        stamp={"step": step, "workdir": str(workdir)},
        accept=_is_export_before_markers,
    ) as tmp:
        report = _export_into(
            tmp,
            generator,
            config,
            workdir,
            step,
            tuple(tflite),
            stochastic,
            data_dir,
            agreement_inputs,
            latency_runs,
            tflite_threads,
        )
        report["export_dir"] = str(out)
        _write_report(tmp, report)
    print((out / "report.md").read_text())
    return report


def _recorded_data_dir(workdir: Path) -> Path:
    run = workdir / RUN_FILE
    if run.exists():
        recorded = read_json(run, "the run record written by training").get("data_dir")
        if isinstance(recorded, str) and recorded and Path(recorded).is_dir():
            return Path(recorded)
    raise Pix2PixError(
        f"{workdir}: no dataset recorded by training (or it moved); pass --data DIR for the int8 "
        "calibration and the agreement checks"
    )


def _export_into(
    out: Path,
    generator,
    config: Config,
    workdir: Path,
    step: int,
    variants: tuple[str, ...],
    stochastic: bool,
    data_dir: Path,
    agreement_inputs: int,
    latency_runs: int,
    tflite_threads: int,
) -> dict:
    save_config(config, out / CONFIG_FILE)
    params = int(sum(np.prod(v.shape) for v in generator.weights))
    card, card_note = _model_card(config, workdir, step, params)
    write_json(out / "model_card.json", card)
    module = GeneratorModule(generator, config, {"config": out / CONFIG_FILE, "model_card": out / "model_card.json"})
    signatures = {
        "serving_default": module.serve.get_concrete_function(),
        "translate_image": module.translate_image.get_concrete_function(),
        "translate_bytes": module.translate_bytes.get_concrete_function(),
        NATIVE_SIGNATURE: module.serve_any_size.get_concrete_function(),
    }
    if stochastic:
        signatures["serving_stochastic"] = module.serve_stochastic.get_concrete_function()
    saved_model = out / SAVED_MODEL_DIR
    with quiet_native_output():  # "Assets written to: ..." notes
        tf.saved_model.save(module, str(saved_model), signatures=signatures)
    variables_bytes = sum(p.stat().st_size for p in (saved_model / "variables").iterdir())

    inputs, split = _held_out_inputs(config, data_dir, agreement_inputs)
    reference = generator(inputs, training=False).numpy()
    representative = _representative(config, data_dir, 64) if "int8" in variants else []
    results, notes = [], [card_note]
    if stochastic and variants:
        notes.append(STOCHASTIC_TFLITE_NOTE)
    for variant in variants:
        model = _tflite_bytes(generator, variant, representative)
        runner = TFLiteRunner(model, num_threads=tflite_threads)
        agreement = psnr(runner(inputs), reference)
        latency = _median_latency_ms(runner, inputs[0], latency_runs)
        gate = AGREEMENT_GATES[variant]
        shipped = agreement >= gate
        name = f"generator_{variant}.tflite"
        if shipped:
            (out / name).write_bytes(model)
        else:
            notes.append(
                f"{variant} was not shipped: its outputs agree with the Keras model to {agreement:.1f} dB, "
                f"below the {gate:.0f} dB gate."
            )
        results.append(
            {
                "variant": variant,
                "file": name if shipped else None,
                "bytes": len(model),
                "psnr_db": agreement,
                "gate_db": gate,
                "latency_ms": latency,
                "shipped": shipped,
            }
        )
    if any(r["variant"] == "float16" and r["shipped"] for r in results):
        notes.append("generator_float16.tflite is the default mobile model.")
    return {
        "workdir": str(workdir),
        "step": step,
        "image_size": config.data.image_size,
        "agreement_inputs": len(inputs),
        "agreement_split": split,
        "latency_runs": latency_runs,
        "tflite_threads": tflite_threads,
        "saved_model": {
            "dir": SAVED_MODEL_DIR,
            "variables_bytes": variables_bytes,
            "parameters": params,
            "signatures": sorted(signatures),
        },
        "tflite": results,
        "notes": notes,
        "model_card": card,
    }
