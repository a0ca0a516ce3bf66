"""The model shipped with the package: the repository's top-level saved_models/.

pyproject.toml installs that folder as the subpackage `pix2pix_tf.saved_models` (its
`__init__.py` is what lets an editable install map it too), so one lookup finds the
model in a checkout, an editable install, a wheel and `pip install .` alike. Stdlib
only: finding the model must not load TensorFlow.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from pix2pix_tf.errors import Pix2PixError

SHIPPED_PACKAGE = "pix2pix_tf.saved_models"
DEMO_MODEL = "facades_demo"  # labels -> photo, 64 px: what `pix2pix-tf demo` trains, exported


def shipped_model() -> Path:
    """The export dir of the shipped demo model (SavedModel, TFLite variants, config, report).

    Returns:
        The folder's path on disk.

    Raises:
        Pix2PixError: the install does not hold the model (built without its package data).
    """
    try:
        folder = importlib.resources.files(SHIPPED_PACKAGE) / DEMO_MODEL
    except ModuleNotFoundError:  # pix2pix_tf imported from a source tree that was never installed
        folder = None
    if not isinstance(folder, Path) or not folder.is_dir():
        raise Pix2PixError(
            f"{folder or SHIPPED_PACKAGE}: the shipped demo model is not in this install of pix2pix_tf; "
            "install the package (pip install . or pip install -e .) or pass a model explicitly"
        )
    return folder
