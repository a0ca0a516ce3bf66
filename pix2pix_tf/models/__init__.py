"""The generator and discriminator networks (imports keras, config and precision only)."""

from __future__ import annotations

import keras

from pix2pix_tf.config import Config
from pix2pix_tf.models.discriminator import build_discriminator, patch_probabilities, receptive_field
from pix2pix_tf.models.generator import any_size, build_generator, generate, unet_depth
from pix2pix_tf.precision import resolve


def _dtype(precision: str) -> str | None:
    precision, _ = resolve(precision)  # "auto": this machine's choice
    return None if precision == "float32" else precision


def generator_for(config: Config, seed: int | None = None, precision: str | None = None) -> keras.Model:
    """The generator `config` describes; `precision` defaults to the training precision."""
    data, model = config.data, config.model
    return build_generator(
        image_size=data.image_size,
        in_channels=data.channels,
        out_channels=data.channels,
        ngf=model.ngf,
        norm=model.norm,
        skip_connections=model.generator == "unet",
        dropout=model.dropout,
        dtype=_dtype(precision or config.train.precision),
        seed=seed,
    )


def discriminator_for(config: Config, seed: int | None = None, precision: str | None = None) -> keras.Model:
    """The discriminator `config` describes; `precision` defaults to the training precision."""
    data, model = config.data, config.model
    return build_discriminator(
        image_size=data.image_size,
        in_channels=data.channels,
        out_channels=data.channels,
        ndf=model.ndf,
        receptive_field=model.d_receptive_field,
        conditional=model.conditional,
        norm=model.norm,
        dtype=_dtype(precision or config.train.precision),
        seed=seed,
    )


def build_models(config: Config, seed: int | None = None) -> tuple[keras.Model, keras.Model]:
    """Builds (generator, discriminator) as `config` describes them, in its training precision."""
    # D's seed is offset so that G and D never draw the same initial kernels; D is built
    # first, as it always was, so unseeded builds draw in the same order.
    discriminator = discriminator_for(config, None if seed is None else seed + 1)
    return generator_for(config, seed), discriminator


__all__ = [
    "any_size",
    "build_discriminator",
    "build_generator",
    "build_models",
    "discriminator_for",
    "generate",
    "generator_for",
    "patch_probabilities",
    "receptive_field",
    "unet_depth",
]
