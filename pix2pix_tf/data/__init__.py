"""Everything between image files on disk and normalised (input, target) batches.

The synthetic datasets, the downloader and `combine` need no TensorFlow and are
imported at once; the loaders and the tf.data pipeline load TensorFlow on first use.
"""

import importlib

from pix2pix_tf.data.combine import combine
from pix2pix_tf.data.download import DATASETS, download
from pix2pix_tf.data.synthetic import example_dataset, synthesize

_LAZY = {
    "PairList": "files",
    "find_pairs": "files",
    "decode": "images",
    "read_image": "images",
    "eval_dataset": "pipeline",
    "train_dataset": "pipeline",
}

__all__ = [
    "DATASETS",
    "PairList",
    "combine",
    "decode",
    "download",
    "eval_dataset",
    "example_dataset",
    "find_pairs",
    "read_image",
    "synthesize",
    "train_dataset",
]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"pix2pix_tf.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'pix2pix_tf.data' has no attribute {name!r}")
