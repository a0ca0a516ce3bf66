"""Finding and restoring training checkpoints, skipping unreadable ones.

A work dir keeps its last few checkpoints (`keep_checkpoints`) so that one damaged
file (a disk error, a copy cut short) costs a few steps, not the run: restoring
tries the newest first and falls back to older ones with a warning.
"""

from __future__ import annotations

import gc
import logging
import re
import shutil
import sys
from pathlib import Path

import tensorflow as tf

from pix2pix_tf.artifacts.workdir import WorkDir
from pix2pix_tf.errors import Pix2PixError, short_message

_NUMBER = re.compile(r"-(\d+)\.index$")


def checkpoint_paths(directory: str | Path) -> list[str]:
    """The checkpoints in `directory`, newest (highest step) first, as TF checkpoint prefixes.

    Read from the files themselves rather than TF's `checkpoint` state file, which
    may itself be the damaged file.
    """
    found = []
    for index in Path(directory).glob("*.index"):
        match = _NUMBER.search(index.name)
        if match:
            found.append((int(match.group(1)), str(index)[: -len(".index")]))
    return [path for _, path in sorted(found, reverse=True)]


def checkpoint_step(directory: str | Path) -> int:
    """The step of the newest checkpoint in `directory` (its file number), 0 if there is none."""
    paths = checkpoint_paths(directory)
    return int(_NUMBER.search(paths[0] + ".index").group(1)) if paths else 0


def restore_newest_readable(
    checkpoint: tf.train.Checkpoint, directory: str | Path, partial: bool = False
) -> str | None:
    """Restores the newest checkpoint of `directory` that reads back completely.

    Damaged checkpoints are skipped, with a warning naming each, once an older one
    has been restored. A checkpoint that reads but does not fit the model (e.g.
    config.json edited by hand) stops at once: older checkpoints would not fit either.

    Args:
        checkpoint: the objects to restore into.
        directory: the checkpoint folder.
        partial: the checkpoint may hold more objects than `checkpoint` (e.g. only
            the generator is wanted); everything `checkpoint` has must still match.

    Returns:
        The restored checkpoint prefix, or None if the folder holds none.

    Raises:
        Pix2PixError: the checkpoints do not fit the model, or none is readable.
    """
    damaged = []
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    # A failed restore leaves TensorFlow's bookkeeping to warn, at garbage collection,
    # about every value it did not restore: hundreds of lines that say nothing more.
    tf_logger.setLevel(logging.ERROR)
    try:
        for path in checkpoint_paths(directory):
            try:
                status = checkpoint.restore(path)
                (status.expect_partial() if partial else status).assert_existing_objects_matched()
            except Exception as e:  # a damaged file fails in TF's reader or in Python's
                if _is_mismatch(e):
                    raise Pix2PixError(
                        f"{path} does not fit the model that {WorkDir.holding(directory).config} describes "
                        f"({short_message(e, 160)}); restore the model options there, or use a new --workdir"
                    ) from None
                damaged.append(f"{Path(path).name} ({type(e).__name__}: {short_message(e, 120)})")
                continue
            for what in damaged:
                print(f"warning: skipped the unreadable checkpoint {what}; restored {path}", file=sys.stderr)
            return path
    finally:
        gc.collect()
        tf_logger.setLevel(level)
    if damaged:
        raise Pix2PixError(
            f"{directory}: no readable checkpoint; {len(damaged)} damaged, the newest {damaged[0]}. "
            "Start a new --workdir, or put back a copy of the checkpoint files"
        )
    return None


def _is_mismatch(error: Exception) -> bool:
    # Shapes that differ, or objects the checkpoint lacks: the file read back fine.
    return isinstance(error, AssertionError) or (isinstance(error, ValueError) and "shape" in str(error))


def remove_partial_saves(directory: str | Path) -> None:
    """Deletes what an interrupted save leaves behind (TF writes `<prefix>_temp/` and renames it)."""
    for partial in Path(directory).glob("*_temp*"):
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        else:
            partial.unlink(missing_ok=True)
