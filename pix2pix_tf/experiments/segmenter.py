"""The FCN-score analogue's judge: a small segmentation network trained on real photos.

The paper scores generated photos with an FCN trained on real Cityscapes photos: if a
generated photo is realistic, the segmenter finds the classes where the label map put
them. Here the same idea works offline on the synthetic facades, whose label maps are
exact: `train_segmenter` fits photo -> class ids on the real training photos once,
and `score` applies it to any photos against the label maps they were made from.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf.artifacts.experimentdir import SegmenterDir
from pix2pix_tf.artifacts.files import read_json, write_json
from pix2pix_tf.config import DataConfig
from pix2pix_tf.data.files import find_pairs
from pix2pix_tf.data.pipeline import eval_dataset, to_uint8
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.experiments.metrics import confusion_matrix, labels_from_colors, segmentation_scores
from pix2pix_tf.runtime import quiet_native_output

STEPS_PER_CALL = 50


def build_segmenter(image_size: int, n_classes: int, width: int = 32, seed: int = 0) -> keras.Model:
    """A small encoder-decoder with skips: photo (S, S, 3) in [-1, 1] -> per-pixel class logits.

    Args:
        image_size: S, a multiple of 8.
        n_classes: K.
        width: filters of the first block (doubling twice).
        seed: weight initialisation.

    Returns:
        A functional model `photo` -> (batch, S, S, K) logits.
    """
    if image_size % 8:
        raise Pix2PixError(f"the segmenter needs a size that is a multiple of 8; got {image_size}")
    init = iter(keras.initializers.HeNormal(seed=seed + i) for i in range(100))  # one initializer per layer

    def conv(x, filters, name):
        x = keras.layers.Conv2D(filters, 3, padding="same", kernel_initializer=next(init), name=name)(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
        return keras.layers.ReLU(name=f"{name}_relu")(x)

    photo = keras.Input((image_size, image_size, 3), name="photo")
    x1 = conv(conv(photo, width, "enc1a"), width, "enc1b")  # (batch, S, S, w)
    x2 = conv(keras.layers.MaxPooling2D(name="pool1")(x1), 2 * width, "enc2")  # (batch, S/2, S/2, 2w)
    x3 = conv(keras.layers.MaxPooling2D(name="pool2")(x2), 4 * width, "enc3")  # (batch, S/4, S/4, 4w)
    x = conv(keras.layers.MaxPooling2D(name="pool3")(x3), 4 * width, "bottleneck")  # (batch, S/8, S/8, 4w)
    for name, skip, filters in (("dec3", x3, 4 * width), ("dec2", x2, 2 * width), ("dec1", x1, width)):
        x = keras.layers.UpSampling2D(name=f"{name}_up")(x)
        x = conv(keras.layers.Concatenate(name=f"{name}_skip")([x, skip]), filters, name)  # back to the skip's size
    logits = keras.layers.Conv2D(n_classes, 1, kernel_initializer=next(init), name="logits", dtype="float32")(x)
    return keras.Model(photo, logits, name="segmenter")


def photos_and_labels(data_dir: str | Path, split: str, image_size: int, palette: np.ndarray):
    """(photos uint8 (N, S, S, 3), class ids (N, S, S)) of a photo|labels dataset split (A = photo)."""
    cfg = DataConfig(image_size=image_size, direction="AtoB")
    photos, labels = [], []
    for source, target, _ in eval_dataset(find_pairs(data_dir, split, cfg), cfg, batch_size=32):
        photos.append(to_uint8(source).numpy())
        labels.append(labels_from_colors(to_uint8(target).numpy(), palette))
    return np.concatenate(photos), np.concatenate(labels)


def train_segmenter(
    data_dir: str | Path, palette: np.ndarray, image_size: int, steps: int = 1500, seed: int = 0, batch_size: int = 8
) -> keras.Model:
    """Fits the segmenter on the real photos of the training split (Adam, cross-entropy, flips).

    Returns:
        The trained model.
    """
    photos, labels = photos_and_labels(data_dir, "train", image_size, palette)
    keras.utils.set_random_seed(seed)
    model = build_segmenter(image_size, len(palette), seed=seed)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        # Several steps per call: at quick-mode sizes a step is shorter than Keras' per-call overhead.
        steps_per_execution=STEPS_PER_CALL,
    )

    def flip(x, y):  # the only augmentation: facades are left-right symmetric, not up-down
        both = tf.concat([x, tf.cast(y[..., None], tf.float32)], axis=-1)
        both = tf.image.random_flip_left_right(both, seed=seed)
        return both[..., :3], tf.cast(both[..., 3], tf.int32)

    x = photos.astype(np.float32) / 127.5 - 1.0
    data = (
        tf.data.Dataset.from_tensor_slices((x, labels.astype(np.int32)))
        .shuffle(len(x), seed=seed)
        .repeat()
        .map(flip)
        .batch(batch_size)
    )
    with contextlib.ExitStack() as first_call:
        # The first call of Keras' train function is where TensorFlow optimises its graph; with
        # oneDNN on (TensorFlow's default on some x86 CPUs, or TF_ENABLE_ONEDNN_OPTS=1) that logs
        # "E0000 ... util.cc:131] oneDNN supports DT_INT32 only on platforms with AVX-512. Falling
        # back to the default Eigen-based implementation" on the native stderr, a harmless note.
        # Only that call is silenced: the callback restores stderr when it returns.
        first_call.enter_context(quiet_native_output())
        restore = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: first_call.close())
        # shuffle=False: the dataset is shuffled above.
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False, callbacks=[restore])
    return model


def load_or_train(
    cache_dir: str | Path, data_dir: str | Path, palette: np.ndarray, image_size: int, steps: int = 1500, seed: int = 0
) -> keras.Model:
    """The cached segmenter of `cache_dir` if it was trained for these settings, else a new one (then cached)."""
    cache = SegmenterDir(cache_dir)
    record = {
        "data_dir": str(Path(data_dir).resolve()),
        "image_size": image_size,
        "steps": steps,
        "seed": seed,
        "classes": len(palette),
    }
    path, record_path = cache.model, cache.record
    if path.is_file() and record_path.is_file() and _read_record(record_path) == record:
        return keras.models.load_model(path)
    model = train_segmenter(data_dir, palette, image_size, steps=steps, seed=seed)
    cache.root.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.keras")
    model.save(tmp)
    tmp.replace(path)
    write_json(record_path, record)
    return model


def _read_record(path: Path) -> dict | None:
    try:
        return read_json(path, "the segmenter's training record")
    except Pix2PixError:  # damaged: the segmenter is trained again and the record rewritten
        return None


def score(segmenter: keras.Model, photos: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The FCN-score analogue of `photos` (uint8 (N, S, S, 3)) against their label maps (N, S, S).

    Returns:
        {"per_pixel_acc", "per_class_acc", "class_iou"}.
    """
    logits = segmenter.predict(np.asarray(photos, np.float32) / 127.5 - 1.0, batch_size=16, verbose=0)
    n_classes = logits.shape[-1]
    return segmentation_scores(confusion_matrix(labels, logits.argmax(axis=-1), n_classes))
