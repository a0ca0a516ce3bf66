"""Downloading the public pix2pix datasets, resumably, into the standard layout."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from pix2pix_tf.errors import DataError

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


def _fetch(url: str, part: Path, timeout: float) -> int | None:
    """Downloads `url` into `part`, continuing from its current size.

    Returns:
        The total size the server announced, or None if it gave none.
    """
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to fetch: the part file is complete
            return have
        raise
    with response:
        status = getattr(response, "status", None)
        length = response.headers.get("Content-Length")
        if status == 206:
            total = int(response.headers["Content-Range"].rsplit("/", 1)[1])
            mode = "ab"
        else:  # the server (or a file:// URL) ignored the range: start over
            total, mode = (int(length) if length else None), "wb"
            have = 0
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
    """Extracts into a temporary folder first, so a broken archive leaves nothing half-written."""
    target = out / name
    with tempfile.TemporaryDirectory(dir=out, prefix=f".{name}-") as tmp:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, EOFError, OSError) as e:
            raise DataError(f"{archive}: not a valid .tar.gz archive ({e}); delete it and download again") from None
        extracted = Path(tmp) / name
        if not extracted.is_dir():
            raise DataError(f"{archive}: expected a top-level folder {name}/ in the archive")
        if not any((extracted / s).is_dir() for s in ("train", "val", "test")):
            raise DataError(f"{archive}: expected {name}/train, {name}/val or {name}/test in the archive")
        if target.exists():
            shutil.rmtree(target)
        extracted.rename(target)
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
