"""The base of every layout class: a root folder and what lies inside it."""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Folder:
    """A layout's root folder; subclasses name what is inside it (nothing is created until written)."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))
