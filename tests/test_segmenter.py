import contextlib

import numpy as np
import pytest

from pix2pix_tf.data.synthetic import FACADE_PALETTE, synthesize
from pix2pix_tf.experiments import segmenter as seg_mod
from pix2pix_tf.experiments.metrics import confusion_matrix, segmentation_scores

pytestmark = pytest.mark.xdist_group("segmenter")  # one worker builds the module's shared fixtures


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("segmenter")
    synthesize("facades", root / "data", count=60, size=32, seed=3)
    model = seg_mod.load_or_train(root / "cache", root / "data", FACADE_PALETTE, 32, steps=100)
    return root, model


def test_segmenter_finds_the_classes_in_real_test_photos(trained):
    root, model = trained
    photos, labels = seg_mod.photos_and_labels(root / "data", "test", 32, FACADE_PALETTE)
    assert photos.shape == (6, 32, 32, 3) and labels.shape == (6, 32, 32)
    scores = seg_mod.score(model, photos, labels)
    # Chance for a guess with the true class frequencies, as the ceiling's floor.
    f = np.bincount(labels.ravel(), minlength=12) / labels.size
    assert scores["per_pixel_acc"] > (f**2).sum() + 0.3, scores
    assert scores["class_iou"] > 2 * (f[f > 0] / (2 - f[f > 0])).mean(), scores
    # Photos that do not match their labels (another facade's) score far lower.
    mismatched = seg_mod.score(model, photos[::-1], labels)
    assert mismatched["per_pixel_acc"] < scores["per_pixel_acc"] - 0.15
    assert segmentation_scores(confusion_matrix(labels, labels, 12))["class_iou"] == 1.0


def test_the_segmenter_is_trained_once_and_reused(trained, monkeypatch):
    root, model = trained

    def never(*args, **kwargs):
        raise AssertionError("retrained although the cache matches")

    monkeypatch.setattr(seg_mod, "train_segmenter", never)
    cached = seg_mod.load_or_train(root / "cache", root / "data", FACADE_PALETTE, 32, steps=100)
    x = np.zeros((1, 32, 32, 3), np.float32)
    np.testing.assert_allclose(cached.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    with pytest.raises(AssertionError, match="retrained"):  # other settings: not the cached one
        seg_mod.load_or_train(root / "cache", root / "data", FACADE_PALETTE, 32, steps=101)
    (root / "cache/segmenter.json").write_text("{cut short")  # a damaged record: trained again, no traceback
    with pytest.raises(AssertionError, match="retrained"):
        seg_mod.load_or_train(root / "cache", root / "data", FACADE_PALETTE, 32, steps=100)


def test_only_the_first_training_call_is_silenced(trained, monkeypatch):
    # TensorFlow's native notes come from the first call (where the graph is optimised); the
    # native stderr must be back before the second call, so later errors are seen.
    root, _ = trained
    steps_when_loud, models = [], []
    real_fit = seg_mod.keras.Model.fit

    def fit(model, *args, **kwargs):
        models.append(model)
        return real_fit(model, *args, **kwargs)

    @contextlib.contextmanager
    def quiet():
        yield
        steps_when_loud.append(int(models[0].optimizer.iterations.numpy()))

    monkeypatch.setattr(seg_mod.keras.Model, "fit", fit)
    monkeypatch.setattr(seg_mod, "quiet_native_output", quiet)
    monkeypatch.setattr(seg_mod, "STEPS_PER_CALL", 2)
    seg_mod.train_segmenter(root / "data", FACADE_PALETTE, 32, steps=6)
    assert steps_when_loud == [2]  # after the first call of 2 steps, not after all 6
