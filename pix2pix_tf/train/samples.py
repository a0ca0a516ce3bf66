"""The sample grid a run shows of itself: input | output | target rows."""

from __future__ import annotations

import dataclasses

import numpy as np

from pix2pix_tf.config import Config
from pix2pix_tf.data.files import PairList, find_pairs
from pix2pix_tf.data.pipeline import to_uint8
from pix2pix_tf.errors import Pix2PixError


def grid(*columns: np.ndarray) -> np.ndarray:
    """Rows of (input | output | target) from [-1, 1] batches, as uint8 (H*batch, W*3, 3)."""
    rows = np.concatenate([np.concatenate(list(images), axis=0) for images in columns], axis=1)
    if rows.shape[-1] == 1:
        rows = np.repeat(rows, 3, axis=-1)
    return to_uint8(rows).numpy()


def sample_pairs(data_dir, config: Config, train_pairs: PairList) -> PairList:
    """Validation pairs for the sample grid if the dataset has a val split, else training pairs."""
    try:
        return find_pairs(data_dir, "val", dataclasses.replace(config.data, skip_bad=True))
    except Pix2PixError:
        return train_pairs
