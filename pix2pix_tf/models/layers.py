"""Building blocks shared by the generator and the discriminator."""

from __future__ import annotations

import random
import zlib

import keras

from pix2pix_tf.errors import Pix2PixError


def model_seed(seed: int | None) -> int:
    """`seed`, or a fresh one drawn from Python's RNG (which `keras.utils.set_random_seed` seeds)."""
    return random.randrange(2**31) if seed is None else seed


def weight_init(seed: int, layer_name: str) -> keras.initializers.Initializer:
    """N(0, 0.02), the paper's initialisation, for one layer.

    Each layer needs its own initializer: a Keras 3 initializer instance returns the
    same values on every call (with or without a seed), so a shared one would start
    every same-shaped kernel identical. The layer's seed is derived from the model
    seed and the layer name, so a build is reproducible and layers differ.
    """
    layer_seed = zlib.crc32(f"{seed}/{layer_name}".encode()) & 0x7FFFFFFF
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02, seed=layer_seed)


def norm_layer(norm: str, name: str, dtype=None) -> keras.layers.Layer | None:
    """The normalisation layer for `norm`, or None for "none".

    "instance" is GroupNormalization with one group per channel, which is instance
    normalisation (tensorflow-addons, which had InstanceNormalization, is dead).
    Batch norm uses PyTorch's momentum (0.1 -> Keras 0.9) and epsilon, as the
    reference implementation.
    """
    if norm == "batch":
        return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name, dtype=dtype)
    if norm == "instance":
        return keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name, dtype=dtype)
    if norm == "none":
        return None
    raise Pix2PixError(f"norm must be batch, instance or none; got {norm!r}")


def uses_bias(norm: str) -> bool:
    # A bias before a normalisation that subtracts the mean is a wasted parameter.
    return norm == "none"
