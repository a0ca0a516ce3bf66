"""The model behind the server: a generator's serving signatures, however it was stored.

An export dir or SavedModel dir is loaded with `tf.saved_model.load`, so the server
runs exactly the graphs TensorFlow Serving would. A training work dir gets the same
signatures built in memory from its newest checkpoint (`signatures.GeneratorModule`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from pix2pix_tf.artifacts.files import load_config
from pix2pix_tf.artifacts.model_path import open_model
from pix2pix_tf.data.images import decode
from pix2pix_tf.data.pipeline import image_to_model, to_uint8
from pix2pix_tf.inference import as_image, load_generator, load_saved_model
from pix2pix_tf.models import unet_depth
from pix2pix_tf.shipped import shipped_model
from pix2pix_tf.signatures import DEFAULT_SIGNATURE, GeneratorModule, signature_functions


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One named input or output of a signature."""

    name: str
    dtype: tf.DType
    shape: tuple[int | None, ...]  # None: any size (the batch, or H and W of serving_any_size)

    def metadata(self, signature: str, kind: str) -> dict:
        """The tensor as TF Serving's metadata API describes it (TensorInfo as JSON)."""
        return {
            "dtype": types_pb2.DataType.Name(self.dtype.as_datatype_enum),  # "DT_FLOAT", "DT_UINT8", ...
            "tensor_shape": {"dim": [{"size": str(-1 if d is None else d), "name": ""} for d in self.shape]},
            "name": f"{signature}_{self.name}:0" if kind == "inputs" else f"StatefulPartitionedCall:{self.name}",
        }


@dataclasses.dataclass
class Signature:
    """A concrete function with its input and output specs."""

    function: object
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    def __call__(self, **tensors) -> dict[str, np.ndarray]:
        return {name: value.numpy() for name, value in self.function(**tensors).items()}


def _signature(function) -> Signature:
    # A loaded SavedModel signature takes keyword arguments; a traced function of an
    # in-memory module takes positional ones, named by their TensorSpecs.
    args, kwargs = function.structured_input_signature
    named = dict(kwargs) or {spec.name: spec for spec in args}
    inputs = {name: TensorSpec(name, spec.dtype, tuple(spec.shape.as_list())) for name, spec in named.items()}
    outputs = {
        name: TensorSpec(name, spec.dtype, tuple(spec.shape.as_list()))
        for name, spec in function.structured_outputs.items()
    }
    return Signature(function, inputs, outputs)


@dataclasses.dataclass
class ServedModel:
    """What the server serves.

    Attributes:
        signatures: name -> Signature (serving_default, translate_image, translate_bytes,
            serving_any_size, and serving_stochastic if exported with it).
        image_size: the side the generator was trained at.
        channels: image channels.
        direction: the training direction (for the page: labels -> photo or another).
        source: where it was loaded from.
        owner: the object the signatures' functions belong to, kept alive with them.
        export: the export dir it came from (its .tflite variants can run in the page's
            browser), or None for a work dir or a bare SavedModel.
    """

    signatures: dict[str, Signature]
    image_size: int
    channels: int
    direction: str
    source: Path
    owner: object = None
    export: Path | None = None

    @property
    def multiple(self) -> int:
        """H and W of serving_any_size inputs must be multiples of this: 2 to the U-Net's depth."""
        return 2 ** unet_depth(self.image_size)


def load_served_model(path: str | Path | None = None) -> ServedModel:
    """Loads an export dir, a SavedModel dir or a training work dir; None serves the shipped demo model.

    Raises:
        Pix2PixError: the path holds none of these, or the model cannot be read.
    """
    model = open_model(
        path if path is not None else shipped_model(),
        accept=("workdir", "export", "saved_model"),
        refusal="nothing to serve",
    )
    if model.kind == "workdir":
        generator, config, _ = load_generator(model.path)
        module = GeneratorModule(generator, config)
        served = {k: _signature(f) for k, f in signature_functions(module, stochastic=True).items()}
        return _decoding_by_rule(ServedModel(served, *_shape(config), model.path, owner=module))
    saved_model = model.saved_model
    loaded = load_saved_model(saved_model.root)
    served = {name: _signature(f) for name, f in loaded.signatures.items()}
    if saved_model.config.is_file():
        size, channels, direction = _shape(load_config(saved_model.config))
    else:  # a SavedModel from elsewhere: read what the signature says
        inputs = served[DEFAULT_SIGNATURE].inputs
        shape = inputs[next(iter(inputs))].shape
        size, channels, direction = shape[1], shape[3], "AtoB"
    export = model.path if model.kind == "export" else None
    return _decoding_by_rule(
        ServedModel(served, size, channels, direction, saved_model.root, owner=loaded, export=export)
    )


def _decoding_by_rule(served: ServedModel) -> ServedModel:
    """Replaces the graph's `translate_bytes` decoder with the package's one decoding rule.

    The SavedModel decodes in its graph with TensorFlow's decoder, which knows no EXIF
    orientation and sizes an animated GIF by its largest frame. The server decodes in
    Python as `predict` and training do (`data.images`), then runs `serving_default`:
    the same resize, model and PNG encoding, so the signature's inputs, outputs and
    metadata are unchanged.
    """
    signature = served.signatures.get("translate_bytes")
    if signature is None:
        return served
    serve = served.signatures[DEFAULT_SIGNATURE].function
    size, channels = served.image_size, served.channels

    def translate_bytes(image_bytes):
        images = [as_image(decode(bytes(data), f"image_bytes[{i}]"), channels) for i, data in enumerate(image_bytes)]
        batch = tf.stack([image_to_model(image, size) for image in images])
        outputs = serve(input_image=batch)["output_image"]
        png = [tf.io.encode_png(to_uint8(y, size=image.shape[:2])) for y, image in zip(outputs, images)]
        return {"output_bytes": tf.stack(png)}

    served.signatures["translate_bytes"] = dataclasses.replace(signature, function=translate_bytes)
    return served


def _shape(config) -> tuple[int, int, str]:
    return config.data.image_size, config.data.channels, config.data.direction
