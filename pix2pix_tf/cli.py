"""The `pix2pix-tf` command: argument parsing only; the work is in the library."""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the output

from pix2pix_tf.errors import Pix2PixError  # noqa: E402


def _data_synth(args):
    from pix2pix_tf.data.synthetic import synthesize

    synthesize(args.name, args.out, count=args.count, size=args.size, seed=args.seed)


def _data_download(args):
    from pix2pix_tf.data.download import download

    download(args.name, args.out, url=args.url)


def _data_combine(args):
    from pix2pix_tf.data.combine import combine

    combine(args.a, args.b, args.out)


def _data_show(args):
    from pix2pix_tf.config import DataConfig
    from pix2pix_tf.data.show import show

    cfg = DataConfig(
        image_size=args.image_size,
        direction=args.direction,
        preprocess=args.preprocess,
        flip=not args.no_flip,
        skip_bad=args.skip_bad,
    )
    show(args.dir, args.out, cfg, split=args.split, count=args.count)


def _add_data_commands(sub):
    from pix2pix_tf.config import DIRECTIONS, PREPROCESS_MODES
    from pix2pix_tf.data.download import DATASETS
    from pix2pix_tf.data.synthetic import SYNTHETIC

    data = sub.add_parser("data", help="make, fetch, combine and inspect paired datasets")
    dsub = data.add_subparsers(dest="data_command", required=True)

    p = dsub.add_parser("synth", help="write a built-in synthetic dataset (no network needed)")
    p.add_argument("name", choices=sorted(SYNTHETIC))
    p.add_argument("--out", required=True, help="output directory (gets train/, val/, test/)")
    p.add_argument("--count", type=int, default=500, help="total pairs, split 80/10/10 (default 500)")
    p.add_argument("--size", type=int, default=256, help="side of each half in pixels (default 256)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_data_synth, needs_tensorflow=False)

    p = dsub.add_parser("download", help="download a public pix2pix dataset")
    p.add_argument("name", choices=sorted(DATASETS))
    p.add_argument("--out", required=True, help="parent directory; the data lands in OUT/NAME/")
    p.add_argument("--url", help="archive URL override (mirror, or file:// for a local copy)")
    p.set_defaults(func=_data_download, needs_tensorflow=False)

    p = dsub.add_parser("combine", help="write A|B images from same-named files in A/ and B/")
    p.add_argument("--a", required=True, help="folder of A images (with split subfolders, or flat)")
    p.add_argument("--b", required=True, help="folder of B images, same names and subfolders")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_data_combine, needs_tensorflow=False)

    p = dsub.add_parser("show", help="save a grid of input | target pairs after preprocessing")
    p.add_argument("dir")
    p.add_argument("--split", default="train")
    p.add_argument("--count", type=int, default=4)
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--direction", choices=DIRECTIONS, default="AtoB")
    p.add_argument("--preprocess", choices=PREPROCESS_MODES, default="resize_and_crop")
    p.add_argument("--no-flip", action="store_true")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable or malformed files")
    p.set_defaults(func=_data_show)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pix2pix-tf", description="pix2pix image-to-image translation")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_data_commands(sub)
    return parser


def _import_tensorflow_quietly() -> None:
    # TensorFlow's C++ runtime logs CUDA probing and CPU-feature notes to fd 2 at
    # import and device set-up, ignoring TF_CPP_MIN_LOG_LEVEL; hide just that part.
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        tf.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the process exit code."""
    args = build_parser().parse_args(argv)
    if getattr(args, "needs_tensorflow", True):
        _import_tensorflow_quietly()
    try:
        args.func(args)
    except Pix2PixError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
