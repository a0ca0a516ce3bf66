"""`pix2pix-tf data ...`: make, fetch, combine and inspect paired datasets."""

from __future__ import annotations

from pix2pix_tf.cli.options import add_flags, config_flags, overrides
from pix2pix_tf.config import Config

# The preprocessing options of `train` that change what `data show` draws.
SHOW_FLAGS = config_flags(Config, {"data": ("image_size", "direction", "preprocess", "flip", "skip_bad")})


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

    cfg = DataConfig(**overrides(args, SHOW_FLAGS)["data"])
    show(args.dir, args.out, cfg, split=args.split, count=args.count)


def add_commands(sub):
    from pix2pix_tf.data.download import DATASETS
    from pix2pix_tf.data.synthetic import SYNTHETIC

    data = sub.add_parser("data", help="make, fetch, combine and inspect paired datasets")
    dsub = data.add_subparsers(dest="data_command", required=True)

    p = dsub.add_parser("synth", help="write a built-in synthetic dataset (no network needed)")
    p.add_argument("name", choices=sorted(SYNTHETIC))
    p.add_argument(
        "--out", required=True, help="output folder (gets train/, val/, test/): new, empty or an earlier synth output"
    )
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
    p.add_argument("--out", required=True, help="output folder: new, empty or an earlier combine output")
    p.set_defaults(func=_data_combine, needs_tensorflow=False)

    p = dsub.add_parser("show", help="save a grid of input | target pairs after preprocessing")
    p.add_argument("dir")
    p.add_argument("--split", default="train")
    p.add_argument("--count", type=int, default=4)
    p.add_argument("--out", required=True, help="image file to write (.png, .jpg, .pdf or .svg)")
    add_flags(p, SHOW_FLAGS)
    p.set_defaults(func=_data_show)
