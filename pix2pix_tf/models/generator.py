"""The U-Net generator of pix2pix (paper sec. 3.2.1 and appendix 6.1.1).

Encoder block i: LeakyReLU(0.2) -> Conv 4x4 stride 2 -> Norm (no activation on
the input, no norm on the first block nor on the 1x1 bottleneck). Decoder block:
ReLU -> ConvTranspose 4x4 stride 2 -> Norm -> Dropout(0.5) in the three innermost
blocks, then concatenation with the mirrored encoder feature (layer i <-> n - i).
This is the reference implementation's ordering, so skip features are passed
pre-activation and the decoder's ReLU acts on them.
"""

from __future__ import annotations

import contextlib
import threading

import keras

from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.models.layers import Dropout, model_seed, norm_layer, uses_bias, weight_init

N_DROPOUT_BLOCKS = 3  # paper: dropout in the first three decoder layers


def unet_depth(image_size: int) -> int:
    """Number of stride-2 down-samplings of the U-Net for `image_size`.

    The image is halved as often as its size divides evenly: a power of two down
    to 1x1 (8 times at 256, 5 at 32), 96 = 3 * 32 five times to a 3x3 bottleneck.
    """
    if image_size < 32 or image_size % 32:
        raise Pix2PixError(
            f"the U-Net generator needs a square size that is a multiple of 32 (it halves the "
            f"image at least 5 times); got {image_size}"
        )
    return (image_size & -image_size).bit_length() - 1  # the number of times 2 divides image_size


def encoder_filters(depth: int, ngf: int) -> list[int]:
    """Channels per encoder block: ngf, 2 ngf, 4 ngf, then 8 ngf (C64-C128-C256-C512-C512...)."""
    return [ngf * min(2**i, 8) for i in range(depth)]


def build_generator(
    image_size: int = 256,
    in_channels: int = 3,
    out_channels: int = 3,
    ngf: int = 64,
    norm: str = "batch",
    skip_connections: bool = True,
    dropout: float = 0.5,
    dtype: str | None = None,
    seed: int | None = None,
    name: str = "generator",
) -> keras.Model:
    """Builds the pix2pix U-Net (or, without skips, the encoder-decoder baseline).

    Args:
        image_size: side of the square input, a multiple of 32 (see `unet_depth`:
            8 down-samplings at 256, 5 at 32).
        in_channels: channels of the input image.
        out_channels: channels of the generated image.
        ngf: filters of the first encoder block.
        norm: "batch", "syncbatch", "instance" or "none".
        skip_connections: False gives the paper's encoder-decoder baseline.
        dropout: rate in the three innermost decoder blocks (0 disables it).
        dtype: Keras dtype policy for the layers, e.g. "mixed_bfloat16"; the tanh
            output is always float32.
        seed: seed of the weight initialisers (each layer's is derived from it);
            None draws one from Python's RNG, which `keras.utils.set_random_seed` seeds.

    Returns:
        A functional model mapping `input_image` (batch, S, S, in_channels) in
        [-1, 1] to (batch, S, S, out_channels) in [-1, 1]. Call it with
        `training=True` for the paper's test-time noise (dropout on).
    """
    depth = unet_depth(image_size)
    filters = encoder_filters(depth, ngf)
    seed = model_seed(seed)
    bias = uses_bias(norm)
    inputs = keras.Input((image_size, image_size, in_channels), name="input_image")

    skips, x = [], inputs
    for i, f in enumerate(filters):  # (batch, S / 2^(i+1), S / 2^(i+1), f)
        if i > 0:
            x = keras.layers.LeakyReLU(0.2, name=f"down{i + 1}_lrelu", dtype=dtype)(x)
        innermost, outermost = i == depth - 1, i == 0
        x = keras.layers.Conv2D(
            f,
            4,
            strides=2,
            padding="same",
            kernel_initializer=weight_init(seed, f"down{i + 1}_conv"),
            use_bias=bias or innermost or outermost,
            name=f"down{i + 1}_conv",
            dtype=dtype,
        )(x)
        norm_l = None if (innermost or outermost) else norm_layer(norm, f"down{i + 1}_norm", dtype)
        if norm_l is not None:
            x = norm_l(x)
        skips.append(x)
    # x: (batch, 1, 1, 8 ngf) bottleneck (3x3 at 96, 384, ...)

    for j, i in enumerate(range(depth - 2, -1, -1)):  # up-sample to the size of encoder block i
        x = keras.layers.ReLU(name=f"up{i + 2}_relu", dtype=dtype)(x)
        x = keras.layers.Conv2DTranspose(
            filters[i],
            4,
            strides=2,
            padding="same",
            kernel_initializer=weight_init(seed, f"up{i + 2}_convT"),
            use_bias=bias,
            name=f"up{i + 2}_convT",
            dtype=dtype,
        )(x)
        norm_l = norm_layer(norm, f"up{i + 2}_norm", dtype)
        if norm_l is not None:
            x = norm_l(x)
        if dropout > 0 and j < N_DROPOUT_BLOCKS:
            x = Dropout(dropout, name=f"up{i + 2}_dropout", dtype=dtype)(x)
        if skip_connections:
            x = keras.layers.Concatenate(name=f"skip{i + 1}", dtype=dtype)([x, skips[i]])
        # x: (batch, S / 2^(i+1), S / 2^(i+1), 2 filters[i]) with skips, filters[i] without

    x = keras.layers.ReLU(name="up1_relu", dtype=dtype)(x)
    x = keras.layers.Conv2DTranspose(
        out_channels,
        4,
        strides=2,
        padding="same",
        kernel_initializer=weight_init(seed, "up1_convT"),
        name="up1_convT",
        dtype=dtype,
    )(x)
    outputs = keras.layers.Activation("tanh", name="output_image", dtype="float32")(x)  # (batch, S, S, out)
    return keras.Model(inputs, outputs, name=name)


def any_size(generator: keras.Model) -> keras.Model:
    """The same generator (the same layers and weights) on an input of any height and width.

    The U-Net is fully convolutional: built for S x S, it applies to H x W when both
    are multiples of 2^depth (see `unet_depth`). Nothing is copied, so training the
    one trains the other and a SavedModel holding both stores each weight once.
    """
    channels = generator.input_shape[-1]
    source = keras.Input((None, None, channels), name="input_image")
    return keras.models.clone_model(generator, input_tensors=source, clone_function=lambda layer: layer)


_MOMENTUM_LOCK = threading.RLock()


@contextlib.contextmanager
def _batch_statistics_only(generator: keras.Model):
    """Training-mode calls made inside normalise with batch statistics and update nothing.

    Keras' BatchNormalization updates `moving * momentum + batch * (1 - momentum)` and
    reads `momentum` when it is called or traced: at 1.0 the update writes back the
    value it read. Nothing is saved and restored, so the trick also holds inside a
    traced function (the constant is baked in) and under concurrent calls of one.
    """
    layers = [layer for layer in generator.layers if isinstance(layer, keras.layers.BatchNormalization)]
    # One at a time: two overlapping calls could otherwise each save the other's 1.0
    # and leave it in place, freezing the statistics of later training.
    with _MOMENTUM_LOCK:
        momenta = [layer.momentum for layer in layers]
        for layer in layers:
            layer.momentum = 1.0
        try:
            yield
        finally:
            for layer, momentum in zip(layers, momenta):
                layer.momentum = momentum


def generate(generator: keras.Model, images, stochastic: bool = False):
    """Runs the generator in one of the two test modes.

    Args:
        generator: a model from `build_generator`.
        images: (batch, S, S, C) float32 in [-1, 1].
        stochastic: False (default, used for export): dropout off, batch norm with
            its moving statistics, so the same input always gives the same output.
            True: the paper's test mode (sec. 6.3 of the appendix): dropout on and
            batch norm with the statistics of this batch; the moving statistics are
            not changed. Eager or inside a `tf.function` (the exported
            `serving_stochastic` signature is this call, traced).

    Returns:
        The generated images, float32 in [-1, 1].
    """
    if not stochastic:
        return generator(images, training=False)
    # The no-op update is exact only for finite batch statistics (0 * inf is NaN), so
    # inputs are held to the model's range. (An empty batch fails in the first
    # convolution, before any statistic is computed.)
    images = keras.ops.clip(keras.ops.nan_to_num(images), -1.0, 1.0)
    with _batch_statistics_only(generator):
        return generator(images, training=True)
