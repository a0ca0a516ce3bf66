"""The generator and discriminator networks (imports keras and config only)."""

from __future__ import annotations

import keras

from pix2pix_tf.config import Config
from pix2pix_tf.models.discriminator import build_discriminator, receptive_field
from pix2pix_tf.models.generator import build_generator, generate, unet_depth


def build_models(config: Config, seed: int | None = None) -> tuple[keras.Model, keras.Model]:
    """Builds (generator, discriminator) as `config` describes them."""
    data, model = config.data, config.model
    precision = config.train.precision
    dtype = None if precision == "float32" else precision
    generator = build_generator(
        image_size=data.image_size,
        in_channels=data.channels,
        out_channels=data.channels,
        ngf=model.ngf,
        norm=model.norm,
        skip_connections=model.generator == "unet",
        dropout=model.dropout,
        dtype=dtype,
        seed=seed,
    )
    discriminator = build_discriminator(
        image_size=data.image_size,
        in_channels=data.channels,
        out_channels=data.channels,
        ndf=model.ndf,
        receptive_field=model.d_receptive_field,
        conditional=model.conditional,
        norm=model.norm,
        dtype=dtype,
        seed=None if seed is None else seed + 1,
    )
    return generator, discriminator


__all__ = ["build_discriminator", "build_generator", "build_models", "generate", "receptive_field", "unet_depth"]
