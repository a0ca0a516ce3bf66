import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from conftest import write_image

from pix2pix_tf.config import DataConfig
from pix2pix_tf.data.files import find_pairs
from pix2pix_tf.data.pipeline import eval_dataset, load_image, train_dataset

TOL = 1.01 / 127.5  # one 8-bit level after rounding


def _batches(pairs, cfg, n, **kwargs):
    return [(a.numpy(), b.numpy()) for a, b in train_dataset(pairs, cfg, **kwargs).take(n)]


@pytest.mark.parametrize("preprocess", ["resize_and_crop", "crop", "scale_width_and_crop", "none"])
def test_pairs_stay_aligned_through_jitter(inverse_pairs, preprocess):
    # B = 255 - A before jitter, so after any shared crop, resize and mirror the
    # normalised target must still be the negated input.
    cfg = DataConfig(image_size=32, load_size=44, preprocess=preprocess, batch_size=2)
    pairs = find_pairs(inverse_pairs, "train", cfg)
    for a, b in _batches(pairs, cfg, 6, seed=3):
        assert a.shape == b.shape == (2, 32, 32, 3)
        np.testing.assert_allclose(b, -a, atol=TOL)


def test_jitter_really_crops_and_flips(inverse_pairs):
    cfg = DataConfig(image_size=32, load_size=44, batch_size=1)
    pairs = find_pairs(inverse_pairs, "train", dataclasses.replace(cfg))
    one_file = dataclasses.replace(pairs, a_paths=pairs.a_paths[:1])
    views = [a for a, _ in _batches(one_file, cfg, 8, seed=0)]
    assert len({v.tobytes() for v in views}) == 8  # eight different crops/mirrors of the same file
    no_jitter = dataclasses.replace(cfg, preprocess="none", flip=False)
    views = [a for a, _ in _batches(one_file, no_jitter, 3, seed=0)]
    assert all(np.array_equal(v, views[0]) for v in views)


def test_flip_mirrors_a_and_b_together(tmp_path):
    ramp = np.tile(np.arange(32, dtype=np.uint8)[None, :, None] * 8, (32, 1, 3))
    write_image(tmp_path / "train/r.png", np.concatenate([ramp, 255 - ramp], axis=1))
    cfg = DataConfig(image_size=32, preprocess="none", flip=True)
    pairs = find_pairs(tmp_path, "train", cfg)
    batches = _batches(pairs, cfg, 16, seed=0)
    directions = {np.sign(a[0, 0, -1, 0] - a[0, 0, 0, 0]) for a, _ in batches}
    assert directions == {1.0, -1.0}  # both mirrored and unmirrored views occur
    for a, b in batches:
        np.testing.assert_allclose(b, -a, atol=TOL)


def test_value_range_and_dtype(inverse_pairs):
    cfg = DataConfig(image_size=32, batch_size=3)
    a, b = _batches(find_pairs(inverse_pairs, "train", cfg), cfg, 1)[0]
    assert a.dtype == np.float32 and a.min() >= -1 and a.max() <= 1
    assert a.min() < -0.9 and a.max() > 0.9  # the full range is used


def test_direction_swaps_input_and_target(tmp_path):
    a = np.zeros((32, 32, 3))
    write_image(tmp_path / "train/x.png", np.concatenate([a, a + 255], axis=1))
    for direction, expected in (("AtoB", -1.0), ("BtoA", 1.0)):
        cfg = DataConfig(image_size=32, direction=direction)
        inp, tgt = _batches(find_pairs(tmp_path, "train", cfg), cfg, 1)[0]
        assert np.allclose(inp, expected) and np.allclose(tgt, -expected)


def test_same_seed_same_stream_other_seed_other_stream(inverse_pairs):
    cfg = DataConfig(image_size=32, batch_size=2)
    pairs = find_pairs(inverse_pairs, "train", cfg)
    first, again, other = (_batches(pairs, cfg, 5, seed=s) for s in (7, 7, 8))
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(first, again))
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(first, other))


def test_resumed_stream_continues_exactly(inverse_pairs):
    # 6 files, batch 4: the stream crosses epoch boundaries mid-batch.
    cfg = DataConfig(image_size=32, batch_size=4)
    pairs = find_pairs(inverse_pairs, "train", cfg)
    straight = _batches(pairs, cfg, 7, seed=1)
    resumed = _batches(pairs, cfg, 4, seed=1, start_step=3)
    for x, y in zip(straight[3:], resumed):
        np.testing.assert_array_equal(x[0], y[0])


@pytest.mark.parametrize("start", [0, 3])
def test_shards_split_each_global_batch_exactly(inverse_pairs, start):
    # 6 files, global batch 4 over 2 workers with 2 replicas each (one image per
    # replica): the slices, in worker and replica order, are the single-device batch.
    cfg = DataConfig(image_size=32, batch_size=4)
    pairs = find_pairs(inverse_pairs, "train", cfg)
    whole = _batches(pairs, cfg, 5, seed=3, start_step=start)
    shards = [_batches(pairs, cfg, 10, seed=3, start_step=start, shard=(w, 2), batch_size=1) for w in range(2)]
    for step, (a, b) in enumerate(whole):
        parts = [shards[w][2 * step + r] for w in range(2) for r in range(2)]
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), a)
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), b)
    # A worker's default batch is its whole slice.
    halves = _batches(pairs, cfg, 5, seed=3, start_step=start, shard=(1, 2))
    for (a, _), (half, _) in zip(whole, halves):
        np.testing.assert_array_equal(half, a[2:])


def test_shards_that_do_not_split_the_batch_are_refused(inverse_pairs):
    cfg = DataConfig(image_size=32, batch_size=3)
    pairs = find_pairs(inverse_pairs, "train", cfg)
    with pytest.raises(ValueError, match="does not split a batch of 3"):
        train_dataset(pairs, cfg, shard=(0, 2))
    with pytest.raises(ValueError, match="batches of 2 do not divide"):
        train_dataset(pairs, dataclasses.replace(cfg, batch_size=6), shard=(0, 2), batch_size=2)


def test_every_file_once_per_epoch(tmp_path):
    for i in range(5):
        write_image(tmp_path / f"train/{i}.png", np.full((32, 64, 3), 40 * i))
    cfg = DataConfig(image_size=32, preprocess="none", flip=False)
    pairs = find_pairs(tmp_path, "train", cfg)
    values = [round(float(a.mean()), 3) for a, _ in _batches(pairs, cfg, 10, seed=0)]
    assert len(set(values[:5])) == 5 and len(set(values[5:])) == 5
    assert values[:5] != values[5:]  # each epoch has its own order


def test_cache_gives_the_same_stream(inverse_pairs):
    cfg = DataConfig(image_size=32, batch_size=2)
    pairs = find_pairs(inverse_pairs, "train", cfg)
    plain = _batches(pairs, cfg, 4, seed=2)
    cached = _batches(pairs, dataclasses.replace(cfg, cache=True), 4, seed=2)
    for x, y in zip(plain, cached):
        np.testing.assert_array_equal(x[0], y[0])


def test_two_folder_layout_matches_combined(inverse_pairs, tmp_path):
    import PIL.Image

    two = tmp_path / "two"
    for path in sorted((inverse_pairs / "train").iterdir()):
        ab = np.asarray(PIL.Image.open(path))
        write_image(two / "A/train" / path.name, ab[:, :40])
        write_image(two / "B/train" / path.name, ab[:, 40:])
    cfg = DataConfig(image_size=32)
    combined = _batches(find_pairs(inverse_pairs, "train", cfg), cfg, 4, seed=5)
    separate = _batches(find_pairs(two, "train", cfg), cfg, 4, seed=5)
    for x, y in zip(combined, separate):
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1], y[1])


def test_grayscale_config_and_rgba_files(tmp_path):
    rgba = np.dstack([np.full((32, 64, 3), 200), np.zeros((32, 64, 1))])
    write_image(tmp_path / "train/x.png", rgba)
    for channels in (1, 3):
        cfg = DataConfig(image_size=32, channels=channels)
        a, b = _batches(find_pairs(tmp_path, "train", cfg), cfg, 1)[0]
        assert a.shape == b.shape == (1, 32, 32, channels)
        np.testing.assert_allclose(a, 200 / 127.5 - 1, atol=TOL)  # alpha dropped, not blended


def test_gif_first_frame(tmp_path):
    from PIL import Image

    frames = [Image.new("RGB", (64, 32), (v, v, v)) for v in (255, 0)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    image = load_image(tf.constant(str(tmp_path / "anim.gif")), 3)
    assert image.shape == (32, 64, 3) and int(image[0, 0, 0]) == 255


def test_eval_dataset_order_names_and_plain_resize(inverse_pairs):
    cfg = DataConfig(image_size=32)
    pairs = find_pairs(inverse_pairs, "test", cfg)
    batches = list(eval_dataset(pairs, cfg, batch_size=2))
    assert len(batches) == 1
    a, b, names = batches[0]
    assert [n.decode() for n in names.numpy()] == ["0", "1"]
    np.testing.assert_allclose(b, -a, atol=TOL)
    again = next(iter(eval_dataset(pairs, cfg, batch_size=2)))
    np.testing.assert_array_equal(a, again[0])  # no randomness at test time


@pytest.mark.parametrize("size", [32, 64])
def test_sizes_multiple_of_32(inverse_pairs, size):
    cfg = DataConfig(image_size=size)
    a, _ = _batches(find_pairs(inverse_pairs, "train", cfg), cfg, 1)[0]
    assert a.shape == (1, size, size, 3)
    assert cfg.resize_to == size * 286 // 256
