"""Building A|B side-by-side images from separate A/ and B/ folders."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from pix2pix_tf.artifacts.datasets import COMBINE_MARKER
from pix2pix_tf.artifacts.files import staged_output
from pix2pix_tf.data.images import ImageError, list_images, read_image
from pix2pix_tf.errors import DataError


@dataclasses.dataclass
class CombineReport:
    """What `combine` wrote and what it left out (paths relative to the A/B folders)."""

    written: int = 0
    only_in_a: list[str] = dataclasses.field(default_factory=list)
    only_in_b: list[str] = dataclasses.field(default_factory=list)
    size_mismatch: list[str] = dataclasses.field(default_factory=list)
    unreadable: list[str] = dataclasses.field(default_factory=list)
    same_name: list[str] = dataclasses.field(default_factory=list)  # two files of one side share a stem

    def summary(self) -> str:
        parts = [f"wrote {self.written} A|B image(s)"]
        for label, items in (
            ("only in A", self.only_in_a),
            ("only in B", self.only_in_b),
            ("size mismatch", self.size_mismatch),
            ("unreadable", self.unreadable),
            ("sharing a name, left out", self.same_name),
        ):
            if items:
                shown = ", ".join(items[:5]) + (", ..." if len(items) > 5 else "")
                parts.append(f"{len(items)} {label} ({shown})")
        return "; ".join(parts)


def combine(a_dir: str | Path, b_dir: str | Path, out: str | Path) -> CombineReport:
    """Pairs same-named images of A/ and B/ and writes them side by side.

    Split folders (``A/train``, ``A/test``, ...) are mirrored under `out`; if A has
    no subfolders, its images are combined straight into `out`. Files without a
    partner, pairs of different sizes and unreadable files are skipped and reported.
    The images are written beside `out` and swapped in whole.

    Args:
        a_dir: folder of A images (left halves).
        b_dir: folder of B images (right halves), same names and split folders.
        out: output folder: missing, empty, or one `combine` wrote before (it is
            replaced). Any other folder is refused, so that files in it are never
            overwritten; so is a folder inside A or B, or holding them.

    Returns:
        A report of what was written and skipped.

    Raises:
        DataError: a missing input folder, or `out` inside A or B (or holding them).
        Pix2PixError: an `out` that may not be replaced, or a full disk.
    """
    a_dir, b_dir, out = Path(a_dir), Path(b_dir), Path(out)
    for folder in (a_dir, b_dir):
        if not folder.is_dir():
            raise DataError(f"{folder}: folder not found")
        inputs, target = folder.resolve(), out.resolve()
        if target == inputs or inputs in target.parents or target in inputs.parents:
            raise DataError(f"{out}: the output folder must be outside the input folder {folder} and not hold it")
    splits = sorted(p.name for p in a_dir.iterdir() if p.is_dir()) or ["."]
    report = CombineReport()
    stamp = {"a": str(a_dir.resolve()), "b": str(b_dir.resolve())}
    made_by = "pix2pix-tf data combine"
    with staged_output(out, "the combined images", marker=COMBINE_MARKER, made_by=made_by, stamp=stamp) as stage:
        for split in splits:
            _combine_split(a_dir, b_dir, split, stage, report)
    print(report.summary())
    return report


def _by_stem(folder: Path, root: Path, report: CombineReport) -> dict[str, Path]:
    """The images of `folder` by file stem; stems shared by two files (a.jpg, a.png) are reported and left out."""
    files: dict[str, list[Path]] = {}
    for path in list_images(folder) if folder.is_dir() else []:
        files.setdefault(path.stem, []).append(path)
    for paths in files.values():
        if len(paths) > 1:
            report.same_name.append(" and ".join(str(p.relative_to(root)) for p in paths))
    return {stem: paths[0] for stem, paths in files.items() if len(paths) == 1}


def _combine_split(a_dir: Path, b_dir: Path, split: str, out: Path, report: CombineReport) -> None:
    a_files = _by_stem(a_dir / split, a_dir, report)
    b_files = _by_stem(b_dir / split, b_dir, report)
    report.only_in_a += [str(a_files[k].relative_to(a_dir)) for k in sorted(a_files.keys() - b_files.keys())]
    report.only_in_b += [str(b_files[k].relative_to(b_dir)) for k in sorted(b_files.keys() - a_files.keys())]
    (out / split).mkdir(exist_ok=True)
    for stem in sorted(a_files.keys() & b_files.keys()):
        a_path, b_path = a_files[stem], b_files[stem]
        try:
            a, b = None, None
            a = read_image(a_path)  # upright, as the user drew on them
            b = read_image(b_path)
        except ImageError:
            # Named as only_in_a / only_in_b are: relative to their own folder, B's marked.
            bad = f"{b_path.relative_to(b_dir)} (in B)" if a is not None else str(a_path.relative_to(a_dir))
            report.unreadable.append(bad)
            continue
        if a.shape != b.shape:
            report.size_mismatch.append(
                f"{a_path.relative_to(a_dir)} {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]}"
            )
            continue
        # Keep lossless sources lossless; JPEG sources stay JPEG.
        suffix = ".jpg" if a_path.suffix.lower() in (".jpg", ".jpeg") else ".png"
        Image.fromarray(np.concatenate([a, b], axis=1)).save(out / split / f"{stem}{suffix}", quality=95, subsampling=0)
        report.written += 1
