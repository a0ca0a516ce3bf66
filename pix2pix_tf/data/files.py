"""Finding image pairs on disk and checking every file before training starts.

Two layouts are understood:

* combined (the pix2pix standard): ``DIR/<split>/name.jpg`` holds A and B side by
  side, A on the left half and B on the right;
* two-folder: ``DIR/A/<split>/name.ext`` and ``DIR/B/<split>/name.ext``, matched by
  file name (the extension may differ).

Every file is decoded once by the rule the pipeline uses (`data.images`), so a
corrupt file is reported here, by name, instead of as a stack trace mid-training.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
from pathlib import Path

from pix2pix_tf.config import DataConfig
from pix2pix_tf.data.images import IMAGE_EXTENSIONS, ImageError, list_images, read_image
from pix2pix_tf.errors import DataError

_MAX_LISTED = 10


@dataclasses.dataclass(frozen=True)
class PairList:
    """The validated files of one split.

    Attributes:
        root: dataset directory.
        split: split name ("train", "val", "test", ...).
        layout: "combined" (A|B in one file) or "two-folder".
        a_paths: combined files, or the A files of the two-folder layout.
        b_paths: the B partners of `a_paths` (empty for the combined layout).
        skipped: (kind, message) of files left out because of `skip_bad`.
    """

    root: str
    split: str
    layout: str
    a_paths: tuple[str, ...]
    b_paths: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return len(self.a_paths)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(Path(p).stem for p in self.a_paths)

    def first(self, n: int) -> PairList:
        """The first `n` pairs (a two-folder layout's B partners stay with their A files)."""
        return dataclasses.replace(self, a_paths=self.a_paths[:n], b_paths=self.b_paths[:n])


def image_size_of(path: str | Path) -> tuple[int, int]:
    """Decodes one image file fully, by the package's one rule, and returns its (height, width).

    Raises:
        DataError: the file cannot be read or is not an accepted image.
    """
    try:
        shape = read_image(path).shape
    except ImageError as e:
        raise DataError(str(e)) from None
    return int(shape[0]), int(shape[1])


def _min_side(cfg: DataConfig) -> int:
    # Random crops without a resize need the image itself to hold the crop.
    return cfg.image_size if cfg.preprocess == "crop" else 1


# A check returns None for a good file, else (kind, message) for the summary line.
Problem = tuple[str, str] | None


def _check_combined(path: Path, cfg: DataConfig) -> Problem:
    try:
        h, w = image_size_of(path)
    except DataError as e:
        return "unreadable", str(e)
    if w % 2:
        return "odd width", f"{path}: width {w} is odd; an A|B image must have an even width (A and B halves)"
    if min(h, w // 2) < _min_side(cfg):
        return (
            "too small",
            f"{path}: each half is {w // 2}x{h}; preprocess 'crop' needs at least {cfg.image_size}x{cfg.image_size}",
        )
    return None


def _check_two_folder(a: Path, b: Path, cfg: DataConfig) -> Problem:
    try:
        size_a, size_b = image_size_of(a), image_size_of(b)
    except DataError as e:
        return "unreadable", str(e)
    if size_a != size_b:
        return "size mismatch", (
            f"{a} is {size_a[1]}x{size_a[0]} but its partner {b} is "
            f"{size_b[1]}x{size_b[0]}; A and B must have the same size"
        )
    if min(size_a) < _min_side(cfg):
        return (
            "too small",
            f"{a}: {size_a[1]}x{size_a[0]}; preprocess 'crop' needs at least {cfg.image_size}x{cfg.image_size}",
        )
    return None


def _split_dir(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: split folder not found ({what})")
    files = list_images(folder)
    if not files:
        raise DataError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) found ({what})")
    return files


def _summarise(bad: list[tuple[str, str]], split_dir: Path, cfg: DataConfig) -> None:
    """Raises on bad files, or prints one summary line when skipping them."""
    if not bad:
        return
    if not cfg.skip_bad:
        listed = "\n  ".join(message for _, message in bad[:_MAX_LISTED])
        more = f"\n  ... and {len(bad) - _MAX_LISTED} more" if len(bad) > _MAX_LISTED else ""
        raise DataError(
            f"{len(bad)} bad file(s) in {split_dir}:\n  {listed}{more}\n"
            "Fix or remove them, or pass --skip-bad to leave them out."
        )
    kinds = collections.Counter(kind for kind, _ in bad)
    detail = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    print(f"skipped {len(bad)} bad file(s) in {split_dir}: {detail}")


def find_pairs(root: str | Path, split: str, cfg: DataConfig) -> PairList:
    """Finds and validates the (A, B) pairs of one split.

    Args:
        root: dataset directory in the combined or the two-folder layout.
        split: split folder name, e.g. "train".
        cfg: data configuration (`skip_bad`, and the minimum size for "crop").

    Returns:
        The valid pairs, sorted by file name.

    Raises:
        DataError: the directory or split is missing or empty, a file is bad and
            `skip_bad` is off, or no valid pair is left.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset directory not found")
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        if (root / "A").is_dir() and (root / "B").is_dir():
            layout, split_dir = "two-folder", root / "A" / split
            a_files = _split_dir(root / "A" / split, f"expected {root}/A/{split}/*.jpg")
            b_files = _split_dir(root / "B" / split, f"expected {root}/B/{split}/*.jpg")
            b_by_stem = {p.stem: p for p in b_files}
            a_stems = {p.stem for p in a_files}
            # A file on either side without a partner is the same mistake, treated alike.
            bad = [
                ("unmatched", f"{a}: no partner named {a.stem}.* in {root / 'B' / split}")
                for a in a_files
                if a.stem not in b_by_stem
            ] + [
                ("unmatched", f"{b}: no partner named {b.stem}.* in {root / 'A' / split}")
                for b in b_files
                if b.stem not in a_stems
            ]
            matched = [(a, b_by_stem[a.stem]) for a in a_files if a.stem in b_by_stem]
            problems = list(pool.map(lambda ab: _check_two_folder(*ab, cfg), matched))
            bad += [p for p in problems if p]
            good = [ab for ab, p in zip(matched, problems) if not p]
            a_paths, b_paths = tuple(str(a) for a, _ in good), tuple(str(b) for _, b in good)
        else:
            layout, split_dir = "combined", root / split
            files = _split_dir(
                split_dir, f"expected {root}/{split}/*.jpg with A|B side by side, or {root}/A and {root}/B"
            )
            problems = list(pool.map(lambda p: _check_combined(p, cfg), files))
            bad = [p for p in problems if p]
            a_paths, b_paths = tuple(str(f) for f, p in zip(files, problems) if not p), ()
    _summarise(bad, split_dir, cfg)
    if not a_paths:
        raise DataError(f"{split_dir}: no valid image pairs left after skipping {len(bad)} bad file(s)")
    return PairList(str(root), split, layout, a_paths, b_paths, tuple(bad))
