"""The LiteRT.js runtime (JavaScript and WebAssembly) from the npm registry: pinned, verified, cached per user.

`fetch()` runs `npm pack` for @litertjs/core and its one dependency, @litertjs/wasm-utils, at
the pinned VERSION, checks each tarball against the integrity hash the registry published
for it (PINNED), and writes the files a web app needs (`artifacts.webdir.RuntimeDir`) into
a folder of the per-user cache, whole or not at all. npm keeps its own per-user cache and is
asked to prefer it, so a second fetch needs no network; once our folder is complete, npm is
not run at all. The .wasm files (~9 MB each) are never part of this repository.

    python -m pix2pix_tf.webapp.runtime    fetches into the cache and prints the folder
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from pix2pix_tf.artifacts.files import read_stamp, staged_output
from pix2pix_tf.artifacts.webdir import RUNTIME_STAMP, RuntimeDir, runtime_cache_dir
from pix2pix_tf.errors import Pix2PixError, short_message

LITERT_JS = "@litertjs/core"
WASM_UTILS = "@litertjs/wasm-utils"  # litert.js's only import; its own version range is a caret, so pinned too
VERSION = "2.5.3"
# The registry's dist.integrity of each tarball (`npm view SPEC dist.integrity`): SRI, sha512.
PINNED = {
    f"{LITERT_JS}@{VERSION}": (
        "sha512-PlGmbMOq9WitX7FO0jhbdJw9GthatsyuCQXjTt/wJZo0FLaw48q4tz8IwqgqCIkviYGr9OFDL1kCnN4nzWoyJQ=="
    ),
    f"{WASM_UTILS}@{VERSION}": (
        "sha512-4fJiw6tBQnIs+0jH/OQ16nYOiSl8/+zZnn5h2ul8aTKHi05sVqZW580Tmk78pC2kT39A9OYBVdFawteZ/sI1kQ=="
    ),
}
NPM_TIMEOUT = 600  # seconds per package: core is a 12 MB download, and npm retries a failing request for ~70 s
LICENSE_TEXT = "LITERT_LICENSE"  # package data: the Apache-2.0 text (the npm packages carry none)
RETRY = "rerun once the npm registry is reachable (`python -m pix2pix_tf.webapp.runtime` fetches only the runtime)"

log = logging.getLogger(__name__)


class RuntimeUnavailable(Pix2PixError):
    """The LiteRT.js runtime could not be had: no npm, no network and not cached, or a tarball failed its check."""


def cache_dir() -> Path:
    """The per-user cache: $PIX2PIX_TF_CACHE, else $XDG_CACHE_HOME/pix2pix_tf, else ~/.cache/pix2pix_tf."""
    if os.environ.get("PIX2PIX_TF_CACHE"):
        return Path(os.environ["PIX2PIX_TF_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec: a relative path is invalid and to be ignored.
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "pix2pix_tf"


def _folder() -> RuntimeDir:
    return runtime_cache_dir(cache_dir(), VERSION)


def cached() -> Path | None:
    """The cache's runtime folder if it is complete and holds the pinned packages, else None.

    Reads only the folder: no npm, no network. A folder without its stamp (a writer
    still at work or killed) or with a file missing is not complete.
    """
    folder = _folder()
    if read_stamp(folder.root, RUNTIME_STAMP).get("packages") != PINNED:
        return None
    return folder.root if all(path.is_file() for path in folder.files) else None


def fetch() -> Path:
    """The cache's runtime folder, fetched with npm and verified first if it is not complete.

    Returns:
        The folder (a `RuntimeDir`'s root).

    Raises:
        RuntimeUnavailable: npm is missing, failed (no network and not in its cache) or
            timed out, a tarball does not match PINNED, or the cache cannot be written.
            Nothing is left in the cache then.
    """
    found = cached()
    if found is not None:
        return found
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeUnavailable(
            f"the LiteRT.js runtime ({LITERT_JS} {VERSION}) comes from the npm registry, but npm is not on PATH: "
            "install it (Debian/Ubuntu: apt-get install npm; elsewhere: Node.js from https://nodejs.org) and rerun"
        )
    log.info("fetching %s %s with npm (once per user, ~12 MB)", LITERT_JS, VERSION)
    with tempfile.TemporaryDirectory(prefix="pix2pix_tf-npm-") as tmp:
        tarballs = {spec: _verified(spec, _pack(npm, spec, Path(tmp))) for spec in PINNED}
    return _write(tarballs)


def copy_to(dest: str | Path) -> None:
    """Copies the runtime's files (`RuntimeDir.files`, not the stamp) into `dest`, fetching them first if needed.

    Raises:
        RuntimeUnavailable: as `fetch`; nothing is copied then.
    """
    source, target = RuntimeDir(fetch()), RuntimeDir(dest)
    for src, dst in zip(source.files, target.files):
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)  # with the modes new files get, not the cache's


def sri_sha512(data: bytes) -> str:
    """The Subresource Integrity string of `data` for sha512, as npm's dist.integrity writes it."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _pack(npm: str, spec: str, tmp: Path) -> bytes:
    """The bytes of the tarball `npm pack spec` writes: from npm's cache, else the registry."""
    out = tmp / spec.replace("/", "+")
    out.mkdir()
    command = [npm, "pack", spec, "--prefer-offline", "--json", "--pack-destination", str(out)]
    try:
        # Its own session, so that a timeout ends npm and anything it started.
        process = subprocess.Popen(
            command,
            cwd=tmp,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as e:
        raise RuntimeUnavailable(f"could not run {npm} ({short_message(e)}) to fetch {spec}; {RETRY}") from None
    try:
        stdout, stderr = process.communicate(timeout=NPM_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise RuntimeUnavailable(
            f"npm pack {spec} did not finish within {NPM_TIMEOUT} s (a stalled download?); {RETRY}"
        ) from None
    if process.returncode != 0:
        raise RuntimeUnavailable(f"npm pack {spec} failed ({_npm_error(stdout, stderr)}); {RETRY}")
    tarballs = list(out.glob("*.tgz"))
    if len(tarballs) != 1:
        raise RuntimeUnavailable(f"npm pack {spec} exited without error but wrote {len(tarballs)} tarballs; {RETRY}")
    return tarballs[0].read_bytes()


def _npm_error(stdout: str, stderr: str) -> str:
    """npm's error in one line: with --json it prints {"error": {"code", "summary"}}, else its last stderr line."""
    try:
        error = json.loads(stdout)["error"]
        return f"{error['code']}: {error['summary']}".splitlines()[0]
    except (ValueError, LookupError, TypeError):
        lines = [line.strip() for line in stderr.splitlines() if line.strip() and "complete log" not in line]
        return lines[-1] if lines else "no message"


def _verified(spec: str, data: bytes) -> bytes:
    found = sri_sha512(data)
    if found != PINNED[spec]:
        raise RuntimeUnavailable(
            f"{spec} from npm does not match its pinned integrity (expected {PINNED[spec]}, found {found}): "
            "refused, nothing was written; a registry mirror or proxy serving other bytes?"
        )
    return data


def _members(folder: RuntimeDir) -> dict[str, dict[str, Path]]:
    """For each pinned package: which file of its tarball (npm's "package/" prefix) goes where."""
    return {
        f"{LITERT_JS}@{VERSION}": {"package/dist/index.js": folder.module}
        | {f"package/wasm/{path.name}": path for path in folder.wasm_files},
        f"{WASM_UTILS}@{VERSION}": {"package/dist/index.js": folder.wasm_utils},
    }


def _write(tarballs: dict[str, bytes]) -> Path:
    """Writes the verified tarballs' files into the cache's folder, stamped last, and returns it."""
    folder = _folder()
    # Another process may have completed it while npm ran: a complete folder is never replaced under a reader.
    if cached() is not None:
        return folder.root
    try:
        # accept: whatever else is there (a folder without its stamp, files missing) is the cache's to replace.
        with staged_output(
            folder.root,
            "the LiteRT.js runtime",
            marker=RUNTIME_STAMP,
            stamp={"packages": PINNED},
            accept=lambda _: True,
        ) as stage:
            staged = RuntimeDir(stage)
            for spec, members in _members(staged).items():
                _extract(spec, tarballs[spec], members)
            staged.license.write_text(_license())
    except OSError as e:
        raise RuntimeUnavailable(f"{folder.root}: could not write the LiteRT.js runtime ({short_message(e)})") from None
    except RuntimeUnavailable:
        raise
    except Pix2PixError as e:  # a full disk, a failed move: already one line naming the folder
        raise RuntimeUnavailable(str(e)) from None
    return folder.root


def _extract(spec: str, data: bytes, members: dict[str, Path]) -> None:
    """Writes the named regular files of a tarball to their paths; no other member, no link, is followed."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for name, path in members.items():
            try:
                member = tar.getmember(name)
            except KeyError:
                raise RuntimeUnavailable(
                    f"{spec}: its tarball has no {name}, which the web app needs; refused"
                ) from None
            if not member.isfile():
                raise RuntimeUnavailable(f"{spec}: {name} in its tarball is not a regular file; refused")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(tar.extractfile(member).read())  # our modes, not the tarball's (0640)


def _license() -> str:
    """The runtime's LICENSE: which packages it holds, by integrity, then the Apache-2.0 text."""
    packages = "".join(f"  {spec}  {integrity}\n" for spec, integrity in PINNED.items())
    text = importlib.resources.files("pix2pix_tf.webapp").joinpath(LICENSE_TEXT).read_text()
    return (
        f"LiteRT.js, as fetched from the npm registry by pix2pix_tf (package, integrity):\n{packages}"
        "Both are licensed under the Apache License, Version 2.0 (their package.json says so; they carry\n"
        "no license file), whose text follows.\n"
        f"{text}"
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # says what a slow first fetch is doing
    try:
        print(fetch())
    except RuntimeUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
