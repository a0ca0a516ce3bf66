"""The PatchGAN discriminator of pix2pix (paper sec. 3.2.2 and appendix 6.1.2).

An N x N-patch classifier run convolutionally: it outputs one real/fake logit per
overlapping patch. The depth sets the patch (receptive field):

| receptive field | stride-2 convs | logit map at 256 px |
|---|---|---|
| 1 (PixelGAN) | 1x1 convs only | 256 x 256 |
| 16 | 1 | 126 x 126 |
| 34 | 2 | 62 x 62 |
| 70 (default) | 3 | 30 x 30 |
| 142 | 4 | 14 x 14 |
| 286 (ImageGAN at 256) | 5 | 6 x 6 |

C64 (no norm) - C128 - ... with 4x4 convs, stride 2 except the last two, which use
stride 1 and 1-pixel zero padding, as the reference implementation.
"""

from __future__ import annotations

import keras
import numpy as np

from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.models.layers import model_seed, norm_layer, uses_bias, weight_init

N_LAYERS = {1: 0, 16: 1, 34: 2, 70: 3, 142: 4, 286: 5}  # receptive field -> stride-2 convs


def min_image_size(receptive_field: int) -> int:
    """The smallest image side a PatchGAN with this receptive field can be built for."""
    n_layers = N_LAYERS[receptive_field]
    # The two stride-1 4x4 convs each shrink the map by one pixel: need >= 3 after down-sampling.
    return 3 * 2**n_layers if n_layers else 1


def build_discriminator(
    image_size: int = 256,
    in_channels: int = 3,
    out_channels: int = 3,
    ndf: int = 64,
    receptive_field: int = 70,
    conditional: bool = True,
    norm: str = "batch",
    dtype: str | None = None,
    seed: int | None = None,
    name: str = "discriminator",
) -> keras.Model:
    """Builds a PatchGAN discriminator.

    Args:
        image_size: side of the square images.
        in_channels: channels of the input (conditioning) image.
        out_channels: channels of the target / generated image.
        ndf: filters of the first conv.
        receptive_field: patch size, one of 1, 16, 34, 70, 142, 286.
        conditional: True (cGAN) sees `input_image` and `target_image` concatenated;
            False (GAN) has only the `target_image` input.
        norm: "batch", "syncbatch", "instance" or "none".
        dtype: Keras dtype policy for the layers; the logits are always float32.
        seed: seed of the weight initialisers (each layer's is derived from it);
            None draws one from Python's RNG, which `keras.utils.set_random_seed` seeds.

    Returns:
        A functional model with inputs [input_image, target_image] (conditional) or
        target_image, returning a (batch, P, P, 1) map of logits.
    """
    if receptive_field not in N_LAYERS:
        raise Pix2PixError(f"receptive_field must be one of {sorted(N_LAYERS)}; got {receptive_field}")
    n_layers = N_LAYERS[receptive_field]
    if image_size < min_image_size(receptive_field):
        raise Pix2PixError(
            f"a {receptive_field}x{receptive_field} PatchGAN needs images of at least "
            f"{min_image_size(receptive_field)} px; got {image_size}"
        )
    seed = model_seed(seed)
    bias = uses_bias(norm)
    target = keras.Input((image_size, image_size, out_channels), name="target_image")
    if conditional:
        source = keras.Input((image_size, image_size, in_channels), name="input_image")
        inputs = [source, target]
        x = keras.layers.Concatenate(name="condition", dtype=dtype)(inputs)  # (batch, S, S, in + out)
    else:
        inputs, x = target, target

    def block(x, filters, kernel, stride, index, normalise):
        if kernel > 1 and stride == 1:
            x = keras.layers.ZeroPadding2D(1, name=f"pad{index}", dtype=dtype)(x)
        x = keras.layers.Conv2D(
            filters,
            kernel,
            strides=stride,
            padding="same" if stride == 2 else "valid",
            kernel_initializer=weight_init(seed, f"conv{index}"),
            use_bias=bias or not normalise,
            name=f"conv{index}",
            dtype=dtype,
        )(x)
        norm_l = norm_layer(norm, f"norm{index}", dtype) if normalise else None
        if norm_l is not None:
            x = norm_l(x)
        return keras.layers.LeakyReLU(0.2, name=f"lrelu{index}", dtype=dtype)(x)

    if n_layers == 0:  # PixelGAN: 1x1 convs, each pixel judged alone
        x = block(x, ndf, 1, 1, 1, normalise=False)  # (batch, S, S, ndf)
        x = block(x, 2 * ndf, 1, 1, 2, normalise=True)  # (batch, S, S, 2 ndf)
        kernel, pad = 1, False
    else:
        x = block(x, ndf, 4, 2, 1, normalise=False)  # (batch, S/2, S/2, ndf)
        for i in range(1, n_layers):
            x = block(x, ndf * min(2**i, 8), 4, 2, i + 1, normalise=True)  # (batch, S/2^(i+1), ..., ndf 2^i)
        # One more conv at stride 1: (batch, S/2^n - 1, ..., ndf min(2^n, 8))
        x = block(x, ndf * min(2**n_layers, 8), 4, 1, n_layers + 1, normalise=True)
        kernel, pad = 4, True
    if pad:
        x = keras.layers.ZeroPadding2D(1, name="pad_out", dtype=dtype)(x)
    logits = keras.layers.Conv2D(
        1,
        kernel,
        strides=1,
        padding="valid",
        kernel_initializer=weight_init(seed, "logits"),
        name="logits",
        dtype="float32",
    )(x)  # (batch, P, P, 1)
    return keras.Model(inputs, logits, name=name)


def receptive_field(model: keras.Model) -> int:
    """The receptive field of a chain of convolutions, read off the built model.

    r grows by (kernel - 1) * jump at each conv, and jump (the distance between
    neighbouring outputs in input pixels) multiplies by the stride.
    """
    field, jump = 1, 1
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            field += (layer.kernel_size[0] - 1) * jump
            jump *= layer.strides[0]
    return field


def patch_probabilities(discriminator: keras.Model, source, image) -> np.ndarray:
    """What D says of each patch of `image`: the probability that it is real, given `source`.

    Args:
        discriminator: a PatchGAN from `build_discriminator` (an unconditional one
            ignores `source`).
        source: the input images, (N, S, S, C) in [-1, 1].
        image: the real or generated images judged, (N, S, S, C) in [-1, 1].

    Returns:
        float32 (N, P, P): sigmoid of the logits; logit (i, j) sees one receptive
        field of `image` (see `receptive_field`).
    """
    inputs = [source, image] if len(discriminator.inputs) == 2 else image
    logits = discriminator(inputs, training=False)
    return np.asarray(keras.ops.sigmoid(keras.ops.cast(logits, "float32")))[..., 0]
