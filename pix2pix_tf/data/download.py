"""Downloading the public pix2pix datasets, resumably, into the standard layout."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from pix2pix_tf.artifacts.datasets import DOWNLOAD_MARKER
from pix2pix_tf.artifacts.files import read_json, staged_output
from pix2pix_tf.errors import DataError, Pix2PixError, is_disk_full

BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/"
_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class RemoteDataset:
    """One downloadable dataset.

    Attributes:
        name: archive stem; the archive holds ``name/{train,val,test}/*.jpg``.
        approx_size: human-readable archive size, for the user's information.
        direction: the direction the paper trains (A is the left half).
        description: what A and B are.
        sha256: checksum of the archive when known; otherwise the download is
            checked against the server's Content-Length and by extracting it.
    """

    name: str
    approx_size: str
    direction: str
    description: str
    sha256: str | None = None

    @property
    def url(self) -> str:
        return f"{BASE_URL}{self.name}.tar.gz"


DATASETS = {
    d.name: d
    for d in (
        RemoteDataset("facades", "29 MB", "BtoA", "400 train / 100 val / 106 test; A photo | B CMP label map"),
        RemoteDataset("cityscapes", "99 MB", "BtoA", "2975 train / 500 val; A photo | B semantic labels"),
        RemoteDataset("maps", "239 MB", "AtoB", "1096 train / 1098 val; A aerial photo | B Google map"),
        RemoteDataset("edges2shoes", "2.0 GB", "AtoB", "49825 train / 200 val; A edges | B shoe photo"),
        RemoteDataset("edges2handbags", "8.0 GB", "AtoB", "138567 train / 200 val; A edges | B handbag photo"),
        RemoteDataset("night2day", "1.9 GB", "AtoB", "17823 train / 10 val / 2287 test; A night | B day"),
    )
}


def _manual_help(ds: RemoteDataset, out: Path) -> str:
    return (
        f"Without network access, fetch {ds.url} ({ds.approx_size}) on another machine and either "
        f"put it at {out / (ds.name + '.tar.gz')} and rerun this command (it will only extract it), "
        f"or extract it so that {out / ds.name}/train/*.jpg exists."
    )


# "bytes START-END/TOTAL" (TOTAL may be "*": unknown), RFC 9110 sec. 14.4.
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


def _open(url: str, start: int, timeout: float):
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    return urllib.request.urlopen(request, timeout=timeout)


def _fetch(url: str, part: Path, timeout: float) -> int | None:
    """Downloads `url` into `part`, continuing from its current size.

    Returns:
        The total size the server announced, or None if it gave none.
    """
    have = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, have, timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to fetch: the part file is complete
            return have
        raise
    total, mode = None, "wb"
    if getattr(response, "status", None) == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        if match and int(match[1]) == have:
            total, mode = (None if match[2] == "*" else int(match[2])), "ab"
        else:  # no say (or another say) where the bytes start: appending them could corrupt the archive
            response.close()
            print(f"{url}: the server's partial reply does not say it resumes at byte {have}; starting over")
            response = _open(url, 0, timeout)
    with response:
        if mode == "wb":  # a full reply: the server (or a file:// URL) ignored the range, or it was not asked
            length = response.headers.get("Content-Length")
            total, have = (int(length) if length and length.isdigit() else None), 0
        print(
            f"downloading {url}"
            + (f" from byte {have}" if have else "")
            + (f" ({total / 1e6:.1f} MB)" if total else "")
        )
        with open(part, mode) as f:
            shutil.copyfileobj(response, f, _CHUNK)
    return total


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _extract(archive: Path, out: Path, name: str) -> Path:
    """Extracts beside `out/name` and swaps it in: a broken archive leaves the old data as it was.

    `out/name` is replaced only if this command wrote it (its DOWNLOAD_MARKER file); if the
    marker says it came from this very archive, there is nothing to do, so a user's
    later changes to it are kept.
    """
    target = out / name
    stamp = {"archive": archive.name, "bytes": archive.stat().st_size}
    if (target / DOWNLOAD_MARKER).is_file():
        try:
            record = read_json(target / DOWNLOAD_MARKER, "a download record")
        except Pix2PixError:  # damaged: the dataset is replaced like any earlier download
            record = {}
        if all(record.get(key) == value for key, value in stamp.items()):
            print(f"{target} already holds {archive.name}; not extracted again")
            return target
    with staged_output(
        target, f"the {name} dataset", marker=DOWNLOAD_MARKER, made_by="pix2pix-tf data download", stamp=stamp
    ) as stage:
        unpacked = stage / ".archive"
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(unpacked, filter="data")
        except (tarfile.TarError, EOFError, OSError) as e:
            if is_disk_full(e):
                raise
            raise DataError(f"{archive}: not a valid .tar.gz archive ({e}); delete it and download again") from None
        extracted = unpacked / name
        if not extracted.is_dir():
            raise DataError(f"{archive}: expected a top-level folder {name}/ in the archive")
        if not any((extracted / s).is_dir() for s in ("train", "val", "test")):
            raise DataError(f"{archive}: expected {name}/train, {name}/val or {name}/test in the archive")
        for child in extracted.iterdir():
            child.rename(stage / child.name)
        shutil.rmtree(unpacked)
    return target


def download(name: str, out: str | Path, url: str | None = None, timeout: float = 20.0) -> Path:
    """Downloads and extracts a public pix2pix dataset into ``out/name/{train,val,test}``.

    An interrupted download resumes from its ``.part`` file (HTTP Range). The
    archive is checked against the announced size (and the SHA-256 when known)
    before it is extracted.

    Args:
        name: one of DATASETS.
        out: parent directory for the archive and the extracted dataset.
        url: overrides the archive URL (a mirror, or file:// for a local copy).
        timeout: seconds to wait for the server before giving up.

    Returns:
        The extracted dataset directory.

    Raises:
        DataError: unknown name, unreachable server (with instructions for placing
            the data by hand), a size or checksum mismatch, or a broken archive.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    ds = DATASETS[name]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    archive = out / f"{name}.tar.gz"
    if not archive.exists():
        part = archive.with_name(archive.name + ".part")
        try:
            total = _fetch(url or ds.url, part, timeout)
        except (urllib.error.URLError, OSError) as e:
            if is_disk_full(e):
                raise DataError(f"{part}: no space left on device; free some space and rerun to resume") from None
            reason = getattr(e, "reason", e)
            raise DataError(f"could not download {url or ds.url}: {reason}. {_manual_help(ds, out)}") from None
        size = part.stat().st_size
        if total is not None and size != total:
            raise DataError(f"{part}: got {size} bytes, the server announced {total}; rerun to resume")
        part.rename(archive)
    if ds.sha256 and url is None and (digest := _sha256(archive)) != ds.sha256:
        raise DataError(f"{archive}: SHA-256 {digest} does not match the expected {ds.sha256}; delete it and rerun")
    target = _extract(archive, out, name)
    print(f"{name} is ready in {target} (train with --direction {ds.direction}: {ds.description})")
    return target
