"""The generator's serving module and its signatures, shared by export and serve.

`GeneratorModule` is what `export` saves with `tf.saved_model.save` and what
`pix2pix-tf serve` builds in memory for a training work dir, so both offer the same
signatures with the same inputs and outputs:

    serving_default      float32 (N, S, S, C) in [-1, 1] -> output_image, the same
    translate_image      uint8 (N, S, S, C) -> output_image, uint8
    translate_bytes      encoded images (N,) -> output_bytes, PNGs of each input's size
    serving_any_size     float32 (N, H, W, C), H and W multiples of 2^depth -> the same
    serving_stochastic   as serving_default with dropout on and batch statistics (optional)
"""

from __future__ import annotations

import types
from pathlib import Path

import keras
import tensorflow as tf

from pix2pix_tf.config import Config
from pix2pix_tf.data.pipeline import image_to_model, to_uint8
from pix2pix_tf.models import any_size, generate

DEFAULT_SIGNATURE = "serving_default"
UINT8_SIGNATURE = "translate_image"  # uint8 pixels in and out; the .tflite files carry it too
NATIVE_SIGNATURE = "serving_any_size"  # float32 (N, H, W, C), H and W multiples of 2^depth
STOCHASTIC_SIGNATURE = "serving_stochastic"


class GeneratorModule(tf.Module):
    """The generator with its serving signatures, for `tf.saved_model.save` or serving in memory.

    Args:
        generator: the trained Keras generator.
        config: its configuration (image size and channels fix the signatures' shapes).
        assets: files to store with a SavedModel, by name (the export's config and model card).
    """

    def __init__(self, generator: keras.Model, config: Config, assets: dict[str, Path] | None = None):
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
        self.assets = {name: tf.saved_model.Asset(str(path)) for name, path in (assets or {}).items()}
        spec = [self.size, self.size, self.channels]
        # autograph=False: the signatures branch on the config only; autograph's conversion
        # of the Keras call chain would only add seconds to every export.
        self.serve = tf.function(
            self._serve, input_signature=[tf.TensorSpec([None, *spec], tf.float32, "input_image")], autograph=False
        )
        self.translate_image = tf.function(
            self._translate_image, input_signature=[tf.TensorSpec([None, *spec], tf.uint8, "image")], autograph=False
        )
        self.translate_bytes = tf.function(
            self._translate_bytes, input_signature=[tf.TensorSpec([None], tf.string, "image_bytes")], autograph=False
        )
        self.serve_stochastic = tf.function(
            self._serve_stochastic,
            input_signature=[tf.TensorSpec([None, *spec], tf.float32, "input_image")],
            autograph=False,
        )
        self._keras.any_size = any_size(generator)  # the same layers and weights, any H x W
        self.serve_any_size = tf.function(
            self._serve_any_size,
            input_signature=[tf.TensorSpec([None, None, None, self.channels], tf.float32, "input_image")],
            autograph=False,
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


def signature_functions(module: GeneratorModule, stochastic: bool) -> dict[str, tf.types.experimental.ConcreteFunction]:
    """The module's signatures by name, ready for `tf.saved_model.save` or for serving in memory.

    Args:
        module: the generator's serving module.
        stochastic: include STOCHASTIC_SIGNATURE (dropout on, the paper's test mode).
    """
    functions = {
        DEFAULT_SIGNATURE: module.serve.get_concrete_function(),
        UINT8_SIGNATURE: module.translate_image.get_concrete_function(),
        "translate_bytes": module.translate_bytes.get_concrete_function(),
        NATIVE_SIGNATURE: module.serve_any_size.get_concrete_function(),
    }
    if stochastic:
        functions[STOCHASTIC_SIGNATURE] = module.serve_stochastic.get_concrete_function()
    return functions
