"""`pix2pix-tf train`: the flags that override a preset or a saved config, and the call."""

from __future__ import annotations

from pix2pix_tf.cli.common import EXIT_INTERRUPTED
from pix2pix_tf.cli.options import add_flags, config_flags, overrides
from pix2pix_tf.config import PRESETS, Config

# Every field of Config's sections is a flag (pix2pix_tf.config.option declares it).
TRAIN_FLAGS = config_flags(Config)
# The help heading of the train section (data and model keep theirs); fields with their own
# `group` (bookkeeping, devices) go under that.
_TITLES = {"train": "objective and optimisation"}


def _train(args):
    from pix2pix_tf.artifacts import resolve_config
    from pix2pix_tf.config import preset
    from pix2pix_tf.train import train

    base = preset(args.preset) if args.preset else Config()
    config = resolve_config(args.workdir, base, overrides(args, TRAIN_FLAGS))
    result = train(config, args.data, args.workdir, run_eagerly=args.run_eagerly)
    return EXIT_INTERRUPTED if result.interrupted else 0


def add_commands(sub):
    p = sub.add_parser(
        "train",
        help="train (or resume) a model",
        description=(
            "Train pix2pix. Rerunning in a work dir with checkpoints resumes; options not given are taken from "
            "the work dir's config.json, then the preset, then the paper's defaults."
        ),
    )
    p.add_argument("--data", required=True, help="dataset directory (DIR/train/*.jpg A|B, or DIR/A + DIR/B)")
    p.add_argument("--workdir", required=True, help="where config.json, checkpoints/, logs/, samples/ go")
    p.add_argument("--preset", choices=sorted(PRESETS), help="the paper's settings for a standard dataset")
    groups = add_flags(p, TRAIN_FLAGS, _TITLES)
    groups["bookkeeping"].add_argument("--run-eagerly", action="store_true", help="no tf.function (debugging)")
    p.set_defaults(func=_train)
