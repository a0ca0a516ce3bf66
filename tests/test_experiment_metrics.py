import numpy as np
import pytest

from pix2pix_tf.data.synthetic import FACADE_PALETTE, facade_pair
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.experiments.metrics import (
    confusion_matrix,
    lab_histogram_intersection,
    labels_from_colors,
    rgb_to_lab,
    segmentation_scores,
    sharpness_ratio,
)


def _label_maps(n=6, size=64):
    """Synthetic facade label maps (the B side), as class ids and as colours."""
    colours = np.stack([facade_pair(np.random.default_rng([7, i]), size)[1] for i in range(n)])
    return labels_from_colors(colours, FACADE_PALETTE), colours


def test_label_colours_decode_exactly_and_survive_jpeg_noise():
    ids, colours = _label_maps(2)
    np.testing.assert_array_equal(FACADE_PALETTE[ids], colours)  # exact for exact colours
    noisy = np.clip(colours.astype(int) + np.random.default_rng(0).integers(-20, 21, colours.shape), 0, 255)
    np.testing.assert_array_equal(labels_from_colors(noisy.astype(np.uint8), FACADE_PALETTE), ids)


def test_scores_closed_form():
    # true \\ predicted:   0   1   2
    confusion = np.array([[3, 1, 0], [2, 2, 0], [0, 0, 0]])  # class 2 absent from the ground truth
    scores = segmentation_scores(confusion)
    assert scores["per_pixel_acc"] == pytest.approx(5 / 8)
    assert scores["per_class_acc"] == pytest.approx((3 / 4 + 2 / 4) / 2)  # the absent class is left out
    assert scores["class_iou"] == pytest.approx((3 / (4 + 5 - 3) + 2 / (4 + 3 - 2)) / 2)
    np.testing.assert_array_equal(confusion_matrix([0, 0, 1, 2], [0, 1, 1, 2], 3), [[1, 1, 0], [0, 1, 0], [0, 0, 1]])


def test_perfect_labels_score_one_and_shuffled_labels_score_near_chance():
    ids, _ = _label_maps()
    perfect = segmentation_scores(confusion_matrix(ids, ids, 12))
    assert perfect == {"per_pixel_acc": 1.0, "per_class_acc": 1.0, "class_iou": 1.0}
    shuffled = np.random.default_rng(1).permutation(ids.ravel()).reshape(ids.shape)
    scores = segmentation_scores(confusion_matrix(ids, shuffled, 12))
    # Chance for a prediction with the true class frequencies f_i: pixel accuracy sum f_i^2,
    # per-class accuracy mean f_i, class IoU mean f_i / (2 - f_i).
    f = np.bincount(ids.ravel(), minlength=12) / ids.size
    present = f > 0
    assert scores["per_pixel_acc"] == pytest.approx((f**2).sum(), abs=0.01)
    assert scores["per_class_acc"] == pytest.approx(f[present].mean(), abs=0.01)
    assert scores["class_iou"] == pytest.approx((f[present] / (2 - f[present])).mean(), abs=0.01)
    assert scores["class_iou"] < 0.2 < perfect["class_iou"]


def test_bad_inputs_are_clear():
    with pytest.raises(Pix2PixError, match=r"class ids must be in \[0, 3\); got 0..5"):
        confusion_matrix([0, 5], [0, 1], 3)
    with pytest.raises(Pix2PixError, match="differ in size"):
        confusion_matrix([0, 1], [0], 3)
    with pytest.raises(Pix2PixError, match="square confusion matrix"):
        segmentation_scores(np.zeros((3, 3)))
    with pytest.raises(Pix2PixError, match="targets are flat"):
        sharpness_ratio(np.zeros((1, 8, 8, 3)), np.zeros((1, 8, 8, 3)))


def test_sharpness_ratio_ranks_blur_below_and_noise_above():
    _, photos = _label_maps(4)  # crisp edges
    blurred = photos.astype(float)
    for axis in (1, 2):  # a 5-tap box blur along each axis
        blurred = sum(np.roll(blurred, k, axis=axis) for k in range(-2, 3)) / 5
    noisy = np.clip(photos + np.random.default_rng(2).normal(0, 40, photos.shape), 0, 255)
    assert sharpness_ratio(photos, photos) == pytest.approx(1.0)
    assert sharpness_ratio(blurred, photos) < 0.3
    assert sharpness_ratio(noisy, photos) > 1.2


def test_lab_conversion_known_values():
    lab = rgb_to_lab(np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0], [128, 128, 128]], np.uint8))
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.01)  # white
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=0.01)  # black
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.05)  # sRGB red
    np.testing.assert_allclose(lab[3, 1:], [0, 0], atol=0.01)  # grey has no chroma


def test_histogram_intersection_sees_grey_averaging():
    _, photos = _label_maps(4)
    same = lab_histogram_intersection(photos, photos)
    assert same == pytest.approx({"L": 1.0, "a": 1.0, "b": 1.0})
    # Averaging towards grey (what L1 does where it is unsure) keeps L but loses a and b.
    grey = (0.3 * photos + 0.7 * photos.mean(axis=-1, keepdims=True)).astype(np.uint8)
    washed = lab_histogram_intersection(grey, photos)
    assert washed["a"] < 0.6 and washed["b"] < 0.6 and washed["L"] > max(washed["a"], washed["b"])
