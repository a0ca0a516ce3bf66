import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402


def write_image(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path, **kwargs)
    return path


@pytest.fixture
def inverse_pairs(tmp_path):
    """A combined-layout dataset where B = 255 - A pixelwise (lossless PNG).

    A is random noise, so any misalignment of A and B (a shifted crop, a mirror of
    one half only) breaks the relation.
    """
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 2)):
        for i in range(n):
            a = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
            write_image(tmp_path / split / f"{i}.png", np.concatenate([a, 255 - a], axis=1))
    return tmp_path
