"""Files and folders written whole or not at all, for every command that writes one.

JSON files (`write_json`, and the config as config.json) are replaced whole by a
rename. data download, synth and combine, evaluate and export build their result in
a staging folder beside the target and swap it in with two renames, so a failure or a kill
never leaves a half-written result at the target, and a folder the command did
not write (recognised by a marker file) is never replaced. Staging and moved-aside
folders are named `.NAME.tmp-HOST-PID-NS` and `.NAME.old-HOST-PID-NS`: a later run
removes those whose writer has exited and puts back a previous folder left moved
aside.
"""

from __future__ import annotations

import contextlib
import datetime
import glob
import json
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pix2pix_tf import __version__
from pix2pix_tf.config import Config
from pix2pix_tf.errors import Pix2PixError, is_disk_full, short_message

CONFIG_FILE = "config.json"  # the resolved config, in every work dir and export


def write_json(path: str | Path, data) -> None:
    """Writes `data` as JSON; the file is replaced whole, never left half-written."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(path: str | Path, what: str) -> dict:
    """Reads a JSON object, or raises a Pix2PixError naming the file and `what` it should be."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise Pix2PixError(f"{path} not found: expected {what}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise Pix2PixError(f"{path} is damaged: expected {what}, found invalid JSON ({e})") from None
    if not isinstance(data, dict):
        raise Pix2PixError(f"{path}: expected {what} (a JSON object), found {type(data).__name__}")
    return data


def save_config(config: Config, path: str | Path) -> None:
    """Writes `config` as JSON; the file is replaced whole, never left half-written."""
    write_json(path, config.to_dict())


def load_config(path: str | Path) -> Config:
    """Reads a config.json written by training or export; any problem is a Pix2PixError naming the file."""
    data = read_json(path, f"the {CONFIG_FILE} written by training")
    try:
        return Config.from_dict(data)
    except TypeError as e:
        raise Pix2PixError(f"{path} is not a valid pix2pix_tf config: {e}") from None
    except Pix2PixError as e:
        raise Pix2PixError(f"{path}: {e}") from None


_LEFTOVER = re.compile(r"(?P<kind>tmp|old)-(?P<host>.+)-(?P<pid>\d+)-(?P<ns>\d+)")


def _beside(target: Path, kind: str) -> Path:
    return target.with_name(f".{target.name}.{kind}-{socket.gethostname()}-{os.getpid()}-{time.time_ns()}")


def _writer_has_exited(host: str, pid: int) -> bool:
    # A process of another machine (a shared disk) cannot be checked from here, and on
    # Windows os.kill(pid, 0) would terminate it: such leftovers are kept.
    if host != socket.gethostname() or os.name != "posix":
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it exists, under another user
        return False
    return False


def _tidy_beside(target: Path) -> None:
    """Removes the leftovers of writers of `target` that have exited.

    If `target` is missing, the newest folder such a writer moved aside (killed
    between its two renames) is put back first.
    """
    prefix = f".{target.name}."
    stale = []
    for path in target.parent.glob(glob.escape(prefix) + "*"):
        match = _LEFTOVER.fullmatch(path.name[len(prefix) :])
        if match and _writer_has_exited(match["host"], int(match["pid"])):
            stale.append((match["kind"] == "old", int(match["ns"]), path))
    moved_aside = sorted(item for item in stale if item[0])
    if moved_aside and not (target.exists() or target.is_symlink()):
        restored = moved_aside[-1][2]
        restored.rename(target)
        print(
            f"warning: {target} was missing after an interrupted replacement; "
            f"put the previous one back from {restored.name}",
            file=sys.stderr,
        )
    for *_, path in stale:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)


def replace_dir(new: Path, target: Path) -> None:
    """Moves the folder `new` to `target`, replacing whatever is there.

    The previous `target` is moved aside first and deleted only once `new` is in
    place; if moving `new` fails, the previous one is put back.

    Raises:
        Pix2PixError: a move failed; the message says where the previous folder is.
    """
    old = None
    if target.exists() or target.is_symlink():
        old = _beside(target, "old")
        try:
            target.rename(old)
        except OSError as e:
            raise Pix2PixError(f"{target}: could not move it aside to replace it ({short_message(e)})") from None
    try:
        new.rename(target)
    except BaseException as e:
        if old is not None:
            try:
                old.rename(target)
            except OSError:
                raise Pix2PixError(
                    f"{target}: could not move the new folder into place ({short_message(e)}) nor the previous one "
                    f"back from {old}; rename it back by hand"
                ) from None
        if isinstance(e, OSError):
            raise Pix2PixError(
                f"{target}: could not move the new folder into place ({short_message(e)}); "
                "the previous one is unchanged"
            ) from None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def check_replaceable(out: Path, marker: str, made_by: str, accept: Callable[[Path], bool] | None = None) -> None:
    """Refuses an output folder that a command writing `marker` may not replace.

    Args:
        out: the folder the command would replace.
        marker: the file the command leaves in every folder it writes.
        made_by: the command, for the message (e.g. "pix2pix-tf data synth").
        accept: recognises earlier outputs of the command, written before it left a marker.

    Raises:
        Pix2PixError: `out` is a file or a symbolic link, or a non-empty folder
            without `marker` that `accept` does not recognise.
    """
    if out.is_symlink():
        raise Pix2PixError(f"{out}: is a symbolic link; expected a folder that {made_by} may replace")
    if not out.exists():
        return
    if not out.is_dir():
        raise Pix2PixError(f"{out}: is a file; expected a folder that {made_by} may replace (new, empty or its own)")
    if (out / marker).is_file() or not any(out.iterdir()) or (accept is not None and accept(out)):
        return
    raise Pix2PixError(
        f"{out}: folder is not empty and was not written by {made_by} (no {marker} file); "
        "refusing to replace it: choose a new or empty folder"
    )


def read_stamp(folder: str | Path, marker: str) -> dict:
    """What `staged_output` recorded in `folder`'s marker; {} if it has none or it is unreadable."""
    try:
        stamp = json.loads((Path(folder) / marker).read_text())
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


@contextlib.contextmanager
def staged_output(
    out: Path,
    what: str,
    marker: str | None = None,
    made_by: str = "",
    stamp: dict | None = None,
    accept: Callable[[Path], bool] | None = None,
) -> Iterator[Path]:
    """Yields an empty folder beside `out` to write into, then swaps it in at `out`.

    On any failure the staging folder is removed and `out` is left as it was.

    Args:
        out: the folder to produce.
        what: what it holds, for messages ("the export").
        marker: if given, `out` must pass `check_replaceable` and the new folder gets
            this file, holding `stamp` as JSON with the package version and the time.
        made_by: the command, for `check_replaceable`'s message.
        stamp: what the marker records about the output.
        accept: see `check_replaceable`.

    Raises:
        Pix2PixError: `out` may not be replaced, the disk is full, or a move failed.
    """
    if marker is not None:
        check_replaceable(out, marker, made_by, accept)
    target = Path(os.path.abspath(out))  # a name to put things beside, even for "." or "a/.."
    _tidy_beside(target)
    stage = _beside(target, "tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        stage.mkdir()
    except OSError as e:
        if is_disk_full(e):
            raise Pix2PixError(f"{out}: no space left on device to write {what}; free some space and rerun") from None
        # A parent that is a file, a read-only or virtual file system: say where, not a traceback.
        blocker = next((p for p in target.parents if p.exists()), None)
        reason = f"{blocker} is not a folder" if blocker is not None and not blocker.is_dir() else e.strerror or e
        raise Pix2PixError(f"{out}: cannot write {what} there ({reason}); choose another folder") from None
    try:
        yield stage
        if marker is not None:
            created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            record = {"version": __version__, "created": created, **(stamp or {})}
            write_json(stage / marker, record)
        replace_dir(stage, target)
    except BaseException as e:
        shutil.rmtree(stage, ignore_errors=True)
        if is_disk_full(e):
            raise Pix2PixError(
                f"{out}: no space left on device while writing {what}; the partial copy was removed and "
                f"{out} is as it was; free some space and rerun"
            ) from None
        raise


@contextlib.contextmanager
def atomic_file(path: str | Path, what: str) -> Iterator[Path]:
    """Yields a temporary path beside `path` to write to, then renames it to `path`.

    A failure leaves `path` as it was (never half-written) and removes the
    temporary file; a full disk becomes one Pix2PixError naming `path`.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        tmp.replace(path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if is_disk_full(e):
            raise Pix2PixError(
                f"{path}: no space left on device while writing {what}; free some space and rerun"
            ) from None
        raise


def write_file(path: str | Path, data: bytes, what: str) -> None:
    """Writes `data` to `path` whole or not at all (see `atomic_file`)."""
    with atomic_file(path, what) as tmp:
        tmp.write_bytes(data)
