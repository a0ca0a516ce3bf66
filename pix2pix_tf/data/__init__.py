"""Everything between image files on disk and normalised (input, target) batches.

Imported lazily: the synthetic datasets, the downloader and `combine` need no
TensorFlow.
"""

import importlib

_EXPORTS = {
    "combine": "combine",
    "DATASETS": "download",
    "download": "download",
    "PairList": "files",
    "find_pairs": "files",
    "decode_image": "pipeline",
    "eval_dataset": "pipeline",
    "train_dataset": "pipeline",
    "synthesize": "synthetic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"pix2pix_tf.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'pix2pix_tf.data' has no attribute {name!r}")
