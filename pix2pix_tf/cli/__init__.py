"""The `pix2pix-tf` command: argument parsing only; the work is in the library.

One module per command group (data, train, use, experiment, serve); this one builds the parser
and turns every error into one line.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the output

from pix2pix_tf.cli import data, experiment, serve, train, use  # noqa: E402
from pix2pix_tf.cli.common import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE  # noqa: E402
from pix2pix_tf.errors import Pix2PixError, disk_full_cause, is_disk_full, short_message  # noqa: E402

DEBUG_ENV = "PIX2PIX_DEBUG"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pix2pix-tf", description="pix2pix image-to-image translation")
    parser.add_argument("--debug", action="store_true", help=f"show the traceback of any error (or set {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", required=True)
    for commands in (data, train, use, experiment, serve):
        commands.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # --debug is taken anywhere on the line, as the error hint suggests adding it.
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    if getattr(args, "needs_tensorflow", True):
        from pix2pix_tf.runtime import import_tensorflow_quietly

        import_tensorflow_quietly()
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        if debug:
            raise
        print(f"error: {_one_line(e)}", file=sys.stderr)
        # TensorFlow objects abandoned by the failure (e.g. a checkpoint restore) log
        # warnings when collected at exit; after the error line they are only noise.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        # A full disk is a problem the package recognises (README: exit status 2), from
        # whichever write it came: one rule here rather than a handler at every write.
        return EXIT_USAGE if isinstance(e, Pix2PixError) or is_disk_full(e) else EXIT_ERROR


def _one_line(error: Exception) -> str:
    """What the user sees of an error: a Pix2PixError's message, a summary of anything else."""
    if isinstance(error, Pix2PixError):
        return str(error)
    full = disk_full_cause(error)
    if full is not None:
        where = getattr(full, "filename", None)
        return (
            f"no space left on device{f' writing {where}' if where else ''} ({short_message(full)}); "
            "free some space and rerun"
        )
    first = short_message(error)
    return (
        f"unexpected {type(error).__name__}: {first} "
        f"(rerun with --debug, or {DEBUG_ENV}=1, for the traceback; please report it)"
    )
