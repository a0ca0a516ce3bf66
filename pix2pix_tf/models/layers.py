"""Building blocks shared by the generator and the discriminator."""

from __future__ import annotations

import random
import zlib

import keras
import tensorflow as tf

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
    reference implementation. "syncbatch" is batch norm whose training statistics
    are all-reduced over the replicas of a tf.distribute strategy, so they are the
    global batch's (plain batch norm uses each replica's share); with one replica,
    and at inference, the two are the same layer.
    """
    if norm in ("batch", "syncbatch"):
        return keras.layers.BatchNormalization(
            momentum=0.9, epsilon=1e-5, synchronized=norm == "syncbatch", name=name, dtype=dtype
        )
    if norm == "instance":
        return keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name, dtype=dtype)
    if norm == "none":
        return None
    raise Pix2PixError(f"norm must be batch, syncbatch, instance or none; got {norm!r}")


@keras.saving.register_keras_serializable(package="pix2pix_tf")
class Dropout(keras.layers.Dropout):
    """Keras' Dropout, with an independent mask on every replica of a tf.distribute strategy.

    The seed state is mirrored, so Keras' Dropout draws the same mask on every
    replica: the samples of one global batch would share their noise, which the
    paper's only noise source should not do. The replica's index is folded into the
    seed; with a single replica nothing changes.
    """

    def call(self, inputs, training=False):
        replicas = tf.distribute.get_replica_context()
        if not training or self.rate == 0 or replicas is None or replicas.num_replicas_in_sync == 1:
            return super().call(inputs, training=training)
        seed = tf.random.experimental.stateless_fold_in(
            self.seed_generator.next(), tf.cast(replicas.replica_id_in_sync_group, tf.int64)
        )
        # int32, as Keras' own random ops pass it: XLA (TPUs) takes no int64 seed.
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
        return tf.nn.experimental.stateless_dropout(inputs, rate=self.rate, seed=seed, noise_shape=self.noise_shape)


def uses_bias(norm: str) -> bool:
    # A bias before a normalisation that subtracts the mean is a wasted parameter.
    return norm == "none"
