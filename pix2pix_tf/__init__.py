"""pix2pix in TensorFlow/Keras: paired image-to-image translation (Isola et al., CVPR 2017).

Names are imported lazily, so `import pix2pix_tf` (and commands that need no
TensorFlow, such as `pix2pix-tf data synth`) start without loading TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Config": "config",
    "DataConfig": "config",
    "ModelConfig": "config",
    "TrainConfig": "config",
    "preset": "config",
    "load_config": "artifacts",
    "save_config": "artifacts",
    "open_model": "artifacts",
    "DataError": "errors",
    "Pix2PixError": "errors",
    "discriminator_loss": "losses",
    "gan_loss": "losses",
    "generator_loss": "losses",
    "l1_loss": "losses",
    "build_discriminator": "models",
    "build_generator": "models",
    "build_models": "models",
    "generate": "models",
    "receptive_field": "models",
    "import_tensorflow_quietly": "runtime",
    "load": "inference",
    "shipped_model": "shipped",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"pix2pix_tf.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'pix2pix_tf' has no attribute {name!r}")
