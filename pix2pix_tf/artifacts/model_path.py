"""What a path holds: the one rule every command that takes a model applies.

`open_model` recognises a training work dir, an export dir, a SavedModel dir and a
.tflite file by their files (not by their names), in that order, so that `load`,
`predict`, `evaluate`, `export` and `serve` accept the same paths and refuse the
others with the same message.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pix2pix_tf.artifacts.exportdir import ExportDir, SavedModelDir
from pix2pix_tf.artifacts.workdir import WorkDir
from pix2pix_tf.errors import Pix2PixError

TFLITE_SUFFIX = ".tflite"
# Each kind of model path, as messages describe it.
KINDS = {
    "workdir": "a work dir (config.json + checkpoints/)",
    "export": "an export dir",
    "saved_model": "a SavedModel dir (saved_model.pb)",
    "tflite": "a .tflite file",
}


@dataclasses.dataclass(frozen=True)
class ModelPath:
    """A path recognised by `open_model`.

    Attributes:
        kind: "workdir", "export", "saved_model" or "tflite".
        path: the path as given.
    """

    kind: str
    path: Path

    @property
    def workdir(self) -> WorkDir:
        """The work dir (kind "workdir" only)."""
        self._expect("workdir")
        return WorkDir(self.path)

    @property
    def saved_model(self) -> SavedModelDir:
        """The SavedModel: the export's own, or the SavedModel dir itself (kinds "export" and "saved_model")."""
        self._expect("export", "saved_model")
        return ExportDir(self.path).saved_model if self.kind == "export" else SavedModelDir(self.path)

    def _expect(self, *kinds: str) -> None:
        if self.kind not in kinds:
            raise ValueError(f"{self.path} is {KINDS[self.kind]}, not {_listing(kinds)}")


def _kind(path: Path) -> str | None:
    if WorkDir(path).holds_run:
        return "workdir"
    if ExportDir(path).holds_export:
        return "export"
    if SavedModelDir(path).holds_model:
        return "saved_model"
    if path.suffix == TFLITE_SUFFIX and path.is_file():
        return "tflite"
    return None


def _listing(kinds) -> str:
    described = [KINDS[kind] for kind in kinds]
    return described[0] if len(described) == 1 else f"{', '.join(described[:-1])} or {described[-1]}"


def open_model(path: str | Path, accept: tuple[str, ...] = tuple(KINDS), refusal: str = "not a model") -> ModelPath:
    """Says what `path` holds: a work dir, an export dir, a SavedModel dir or a .tflite file.

    Args:
        path: the path to look at.
        accept: the kinds the caller can use (see KINDS).
        refusal: how the message names a path of no accepted kind, e.g. "nothing to serve".

    Returns:
        The recognised `ModelPath`.

    Raises:
        Pix2PixError: the path is missing, holds none of `accept`, or holds a kind not accepted.
    """
    path = Path(path)
    kind = _kind(path)
    if kind in accept:
        return ModelPath(kind, path)
    if kind is None and not path.exists():
        raise Pix2PixError(f"{path}: no such file or folder")
    found = f" ({KINDS[kind]})" if kind is not None else ""
    raise Pix2PixError(f"{path}: {refusal}{found}: expected {_listing(accept)}")
