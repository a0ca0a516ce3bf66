"""tf.data pipelines: validated file pairs -> normalised (input, target) batches.

Training stream. Element `i` of the stream (counting from the first step of the
run, across epochs) is a pure function of (seed, i): epoch `e` visits the files in
a permutation drawn from (seed, e), and the jitter of element `i` is drawn from
(seed, i) with stateless ops. So the stream is reproducible, and a run resumed at
step `s` continues with exactly the batches it would have seen.

A and B are jittered as one image (concatenated on channels), so a crop or a
mirror can never misalign them.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from pix2pix_tf.config import DataConfig
from pix2pix_tf.data import images
from pix2pix_tf.data.files import PairList

AUTOTUNE = tf.data.AUTOTUNE
_JITTER_STREAM = 1  # keeps the jitter seeds apart from the permutation seeds


# The dataset functions branch on the config only, never on a tensor: traced as plain
# Python, without autograph's source conversion (seconds per pipeline on a small CPU).
_plain = tf.autograph.experimental.do_not_convert


def load_image(path: tf.Tensor, channels: int) -> tf.Tensor:
    """A file path -> uint8 (height, width, channels), decoded by the package's one rule (`data.images`).

    The file is decoded in Python (Pillow) inside the graph, so training sees each
    image as `predict`, `serve` and a viewer do: EXIF orientation applied, the first
    picture of a multi-picture file. With `channels=1` the RGB image becomes luma.
    """

    def read(p):
        return images.read_image(os.fsdecode(np.asarray(p).item()))

    image = tf.numpy_function(read, [path], tf.uint8, stateful=False)
    image.set_shape([None, None, 3])
    if channels == 1:
        image = tf.image.rgb_to_grayscale(image)
    return image


def _resize(image: tf.Tensor, height, width) -> tf.Tensor:
    # Bicubic with antialiasing, as the reference repo's PIL BICUBIC; kept uint8 so
    # a cache of decoded images costs 1 byte per value.
    resized = tf.image.resize(image, tf.stack([height, width]), method="bicubic", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def _load_pair(cfg: DataConfig, combined: bool):
    """Returns fn(path_a, path_b) -> uint8 (H, W, 2C): input channels then target channels."""

    def load(path_a, path_b):
        a = load_image(path_a, cfg.channels)
        if combined:
            half = tf.shape(a)[1] // 2
            a, b = a[:, :half], a[:, half : 2 * half]
        else:
            b = load_image(path_b, cfg.channels)
        if cfg.direction == "BtoA":
            a, b = b, a
        return tf.concat([a, b], axis=-1)

    return load


def _train_resize(pair: tf.Tensor, cfg: DataConfig) -> tf.Tensor:
    """The deterministic part of train-time preprocessing (cacheable)."""
    if cfg.preprocess == "resize_and_crop":
        return _resize(pair, cfg.resize_to, cfg.resize_to)
    if cfg.preprocess == "scale_width_and_crop":
        shape = tf.shape(pair)
        height = tf.cast(tf.round(cfg.resize_to * shape[0] / shape[1]), tf.int32)
        return _resize(pair, tf.maximum(height, cfg.image_size), cfg.resize_to)
    if cfg.preprocess == "none":
        return _resize(pair, cfg.image_size, cfg.image_size)
    return pair  # "crop": crop at the file's own resolution


def image_to_model(image: tf.Tensor, size: int) -> tf.Tensor:
    """Any-size uint8 (H, W, C) image -> float32 (size, size, C) in [-1, 1], as predict and serving feed it."""
    resized = tf.image.resize(tf.cast(image, tf.float32), [size, size], method="bicubic", antialias=True)
    return tf.clip_by_value(resized / 127.5 - 1.0, -1.0, 1.0)


def to_uint8(images: tf.Tensor, size=None) -> tf.Tensor:
    """[-1, 1] floats -> uint8 [0, 255], rounded to nearest; first resized to `size` (height, width) if given."""
    images = tf.cast(images, tf.float32)
    if size is not None:
        images = tf.image.resize(images, size, method="bicubic", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0, 255), tf.uint8)


def _normalise_and_split(pair: tf.Tensor, channels: int):
    pair = tf.cast(pair, tf.float32) / 127.5 - 1.0
    return pair[..., :channels], pair[..., channels:]


def _jitter(pair: tf.Tensor, cfg: DataConfig, seed: tf.Tensor) -> tf.Tensor:
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if cfg.preprocess != "none":
        pair = tf.image.stateless_random_crop(pair, [cfg.image_size, cfg.image_size, 2 * cfg.channels], crop_seed)
    if cfg.flip:
        pair = tf.image.stateless_random_flip_left_right(pair, flip_seed)
    return pair


def _index_stream(n: int, seed: int, start: int) -> tf.data.Dataset:
    """(position, file index) from `start` on: one seeded permutation per epoch."""
    start_epoch, offset = divmod(start, n)

    def permutation(epoch):
        keys = tf.random.stateless_uniform([n], seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(tf.argsort(keys))

    indices = tf.data.Dataset.range(start_epoch, 2**62).flat_map(_plain(permutation)).skip(offset)
    return tf.data.Dataset.zip(tf.data.Dataset.range(start, 2**62), indices)


def train_dataset(
    pairs: PairList,
    cfg: DataConfig,
    seed: int = 0,
    start_step: int = 0,
    shard: tuple[int, int] = (0, 1),
    batch_size: int | None = None,
) -> tf.data.Dataset:
    """The endless, shuffled, jittered training stream.

    Args:
        pairs: validated files from `find_pairs`.
        cfg: data configuration (size, jitter switches, batch size, cache).
        seed: makes the order and the jitter reproducible.
        start_step: number of (global) batches already consumed (for resuming).
        shard: (index, count): this stream keeps the index-th of `count` equal,
            contiguous slices of every global batch of `cfg.batch_size` (one shard
            per worker of a distributed run) and decodes only those images, except
            that `cfg.cache` decodes every file once.
        batch_size: size of the batches this stream yields (a replica's share);
            defaults to the whole shard's slice.

    Returns:
        A dataset of (input, target) float32 batches in [-1, 1], each
        (batch_size, image_size, image_size, channels).
    """
    index, count = shard
    if cfg.batch_size % count or not 0 <= index < count:
        raise ValueError(f"shard {shard} does not split a batch of {cfg.batch_size} into equal slices")
    share = cfg.batch_size // count
    batch_size = batch_size or share
    if share % batch_size:
        raise ValueError(f"batches of {batch_size} do not divide a shard's {share} images per step")
    load = _load_pair(cfg, pairs.layout == "combined")
    paths_a = tf.constant(pairs.a_paths)
    paths_b = tf.constant(pairs.b_paths or [""] * len(pairs))

    if cfg.cache:
        # Decode and resize every file once; later epochs only crop and mirror.
        decoded = (
            tf.data.Dataset.from_tensor_slices((paths_a, paths_b))
            .map(_plain(lambda a, b: _train_resize(load(a, b), cfg)), num_parallel_calls=AUTOTUNE)
            .batch(len(pairs))
            .get_single_element()
        )

        def fetch(index):
            return tf.gather(decoded, index)
    else:

        def fetch(index):
            return _train_resize(load(tf.gather(paths_a, index), tf.gather(paths_b, index)), cfg)

    def element(position, index):
        jitter_seed = tf.stack([tf.constant(seed + _JITTER_STREAM, tf.int64), position])
        return _normalise_and_split(_jitter(fetch(index), cfg, jitter_seed), cfg.channels)

    stream = _index_stream(len(pairs), seed, start_step * cfg.batch_size)
    if count > 1:  # positions are global: slice `index` of the batch at step p // B
        stream = stream.filter(_plain(lambda position, _: position % cfg.batch_size // share == index))
    return (
        stream.map(_plain(element), num_parallel_calls=AUTOTUNE, deterministic=True)
        .batch(batch_size, drop_remainder=True)
        .prefetch(AUTOTUNE)
    )


def eval_dataset(pairs: PairList, cfg: DataConfig, batch_size: int = 1) -> tf.data.Dataset:
    """Test-time stream: every pair once, in file order, plainly resized.

    Returns:
        A dataset of (input, target, name) batches; images as in `train_dataset`.
    """
    load = _load_pair(cfg, pairs.layout == "combined")

    def element(path_a, path_b, name):
        pair = _resize(load(path_a, path_b), cfg.image_size, cfg.image_size)
        return (*_normalise_and_split(pair, cfg.channels), name)

    return (
        tf.data.Dataset.from_tensor_slices(
            (list(pairs.a_paths), list(pairs.b_paths or [""] * len(pairs)), list(pairs.names))
        )
        .map(_plain(element), num_parallel_calls=AUTOTUNE)
        .batch(batch_size)
        .prefetch(AUTOTUNE)
    )
