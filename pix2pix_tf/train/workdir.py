"""Which configuration a (re)run of a work dir trains with."""

from __future__ import annotations

from pathlib import Path

from pix2pix_tf.config import CONFIG_FILE, Config, load_config
from pix2pix_tf.errors import Pix2PixError

# Sections whose change makes old checkpoints unusable; "train" may change on resume.
_SHAPE_FIELDS = {"data": ("image_size", "channels", "direction"), "model": None}


def resolve_config(workdir: str | Path, base: Config, overrides: dict[str, dict]) -> Config:
    """The configuration for (re)running training in `workdir`.

    A new work dir takes `base` with `overrides`. An existing one starts from its
    saved config.json, so rerunning needs no flags repeated; explicit overrides of
    the model or the image format must agree with it (old checkpoints could not be
    loaded otherwise), while training settings such as the length may change.

    Args:
        workdir: the run directory.
        base: defaults or a preset, used for a new work dir.
        overrides: per section, the options given explicitly, e.g. {"train": {"steps": 40}}.
    """
    path = Path(workdir) / CONFIG_FILE
    if not path.exists():
        return base.replace(**overrides)
    saved = load_config(path)
    conflicts = []
    for section, fields in _SHAPE_FIELDS.items():
        for key, value in overrides.get(section, {}).items():
            old = getattr(getattr(saved, section), key)
            if (fields is None or key in fields) and value != old:
                conflicts.append(f"{section}.{key}: trained with {old!r}, asked for {value!r}")
    if conflicts:
        raise Pix2PixError(
            f"{path} does not match this command ({'; '.join(conflicts)}); "
            "drop those options to resume, or use a new --workdir"
        )
    return saved.replace(**overrides)
