"""Scores of the paper's analyses, as pure NumPy functions.

* Segmentation scores (the FCN-score's three columns, Long et al. 2015): per-pixel
  accuracy, mean per-class accuracy and mean class IoU from a confusion matrix of
  (true class, predicted class) pixel counts.
* Sharpness: high-frequency (Laplacian) energy of the outputs relative to the
  targets'; 1.0 is as sharp as the real photos, L1 alone comes in below.
* Colourfulness (paper Fig. 7): intersection of the L, a and b histograms of the
  outputs with those of the targets, in CIE Lab.
"""

from __future__ import annotations

import numpy as np

from pix2pix_tf.errors import Pix2PixError


def labels_from_colors(image: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Class ids of a colour-coded label map: each pixel's nearest palette colour.

    Nearest rather than exact, so that a label map saved as JPEG still decodes.

    Args:
        image: uint8 (H, W, 3), or a batch (N, H, W, 3).
        palette: (K, 3) colours, row k the colour of class k.

    Returns:
        int class ids in [0, K), the image's shape without the colour axis.
    """
    image, palette = np.asarray(image, np.int32), np.asarray(palette, np.int32)
    if image.ndim < 2 or image.shape[-1] != 3 or palette.ndim != 2 or palette.shape[-1] != 3:
        raise Pix2PixError(f"expected (..., 3) images and a (K, 3) palette; got {image.shape} and {palette.shape}")
    distances = ((image[..., None, :] - palette) ** 2).sum(axis=-1)  # (..., K)
    return distances.argmin(axis=-1)


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Pixel counts: entry (i, j) counts pixels of true class i predicted as class j.

    Args:
        true: int class ids, any shape.
        predicted: int class ids, the same shape.
        n_classes: K; ids must lie in [0, K).

    Returns:
        int64 (K, K).
    """
    true, predicted = np.asarray(true).ravel(), np.asarray(predicted).ravel()
    if true.shape != predicted.shape:
        raise Pix2PixError(f"true and predicted labels differ in size: {true.size} vs {predicted.size}")
    for name, ids in (("true", true), ("predicted", predicted)):
        if ids.size and (ids.min() < 0 or ids.max() >= n_classes):
            raise Pix2PixError(f"{name} class ids must be in [0, {n_classes}); got {ids.min()}..{ids.max()}")
    return np.bincount(true * n_classes + predicted, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def segmentation_scores(confusion: np.ndarray) -> dict[str, float]:
    """The FCN-score's three numbers from a confusion matrix.

    With n_ij the pixels of class i predicted as j and t_i = sum_j n_ij:
    per-pixel accuracy sum_i n_ii / sum_i t_i; per-class accuracy the mean over
    classes of n_ii / t_i; class IoU the mean of n_ii / (t_i + sum_j n_ji - n_ii).
    Means run over the classes present in the ground truth (t_i > 0), as in the
    FCN evaluation code.

    Returns:
        {"per_pixel_acc", "per_class_acc", "class_iou"}, each in [0, 1].
    """
    confusion = np.asarray(confusion, np.float64)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1] or confusion.sum() <= 0:
        raise Pix2PixError(f"expected a square confusion matrix with some pixels; got shape {confusion.shape}")
    correct, true_total, predicted_total = np.diag(confusion), confusion.sum(axis=1), confusion.sum(axis=0)
    present = true_total > 0
    union = true_total + predicted_total - correct
    return {
        "per_pixel_acc": float(correct.sum() / confusion.sum()),
        "per_class_acc": float(np.mean(correct[present] / true_total[present])),
        "class_iou": float(np.mean(correct[present] / union[present])),
    }


def _laplacian_energy(images: np.ndarray) -> float:
    gray = np.asarray(images, np.float64).mean(axis=-1)  # (N, H, W)
    lap = -4 * gray[:, 1:-1, 1:-1] + gray[:, :-2, 1:-1] + gray[:, 2:, 1:-1] + gray[:, 1:-1, :-2] + gray[:, 1:-1, 2:]
    return float(np.mean(lap**2))


def sharpness_ratio(outputs: np.ndarray, targets: np.ndarray) -> float:
    """High-frequency energy of the outputs over the targets' (mean squared Laplacian of gray).

    Args:
        outputs: uint8 (N, H, W, 3) generated images.
        targets: uint8 (N, H, W, 3) real images of the same inputs.

    Returns:
        The ratio: below 1 blurrier than the real photos, above 1 busier.
    """
    if np.shape(outputs) != np.shape(targets) or np.ndim(outputs) != 4:
        raise Pix2PixError(
            f"expected two (N, H, W, C) batches of one shape; got {np.shape(outputs)}, {np.shape(targets)}"
        )
    reference = _laplacian_energy(targets)
    if reference == 0:
        raise Pix2PixError("the targets are flat (no high-frequency energy): the ratio is undefined")
    return _laplacian_energy(outputs) / reference


def rgb_to_lab(images: np.ndarray) -> np.ndarray:
    """sRGB uint8 (..., 3) -> CIE Lab (D65 white), float64 (..., 3): L in [0, 100], a and b about [-128, 127]."""
    rgb = np.asarray(images, np.float64) / 255.0
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    to_xyz = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
    )
    xyz = linear @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])  # relative to the D65 white point
    delta = 6 / 29
    f = np.where(xyz > delta**3, np.cbrt(xyz), xyz / (3 * delta**2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


LAB_RANGES = {"L": (0.0, 100.0), "a": (-128.0, 128.0), "b": (-128.0, 128.0)}


def lab_histogram_intersection(outputs: np.ndarray, targets: np.ndarray, bins: int = 64) -> dict[str, float]:
    """Intersection of the L, a and b value distributions of outputs and targets (paper Fig. 7).

    Each channel's values over all pixels are binned (`bins` over its range) and
    normalised; the intersection sum_k min(p_k, q_k) is 1 for identical distributions
    and 0 for disjoint ones. A greyed-out (L1-averaged) output loses on a and b.

    Returns:
        {"L", "a", "b"}.
    """
    lab_out, lab_tgt = rgb_to_lab(outputs).reshape(-1, 3), rgb_to_lab(targets).reshape(-1, 3)
    if not len(lab_out) or not len(lab_tgt):
        raise Pix2PixError("no pixels to compare")
    scores = {}
    for k, (name, (low, high)) in enumerate(LAB_RANGES.items()):
        p, _ = np.histogram(np.clip(lab_out[:, k], low, high), bins=bins, range=(low, high))
        q, _ = np.histogram(np.clip(lab_tgt[:, k], low, high), bins=bins, range=(low, high))
        scores[name] = float(np.minimum(p / p.sum(), q / q.sum()).sum())
    return scores
