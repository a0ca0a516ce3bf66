"""`pix2pix-tf train`: the flags that override a preset or a saved config, and the call."""

from __future__ import annotations

from pix2pix_tf.cli.common import EXIT_INTERRUPTED

# CLI flag -> (config section, field, value transform). Flags default to None so
# that only the options given explicitly override a preset or a saved config.
_TRAIN_FLAGS = {
    "image_size": ("data", "image_size", None),
    "load_size": ("data", "load_size", None),
    "channels": ("data", "channels", None),
    "direction": ("data", "direction", None),
    "preprocess": ("data", "preprocess", None),
    "no_flip": ("data", "flip", lambda v: not v),
    "batch_size": ("data", "batch_size", None),
    "cache": ("data", "cache", None),
    "skip_bad": ("data", "skip_bad", None),
    "generator": ("model", "generator", None),
    "ngf": ("model", "ngf", None),
    "ndf": ("model", "ndf", None),
    "norm": ("model", "norm", None),
    "dropout": ("model", "dropout", None),
    "d_receptive_field": ("model", "d_receptive_field", None),
    "unconditional": ("model", "conditional", lambda v: not v),
    "gan_loss": ("train", "gan_loss", None),
    "lambda_l1": ("train", "lambda_l1", None),
    "no_gan": ("train", "use_gan", lambda v: not v),
    "no_l1": ("train", "use_l1", lambda v: not v),
    "lr": ("train", "learning_rate", None),
    "beta_1": ("train", "beta_1", None),
    "steps": ("train", "steps", None),
    "epochs": ("train", "epochs", None),
    "decay_steps": ("train", "decay_steps", None),
    "decay_epochs": ("train", "decay_epochs", None),
    "precision": ("train", "precision", None),
    "seed": ("train", "seed", None),
    "checkpoint_every": ("train", "checkpoint_every", None),
    "keep_checkpoints": ("train", "keep_checkpoints", None),
    "sample_every": ("train", "sample_every", None),
    "log_every": ("train", "log_every", None),
    "steps_per_call": ("train", "steps_per_call", None),
    "strategy": ("train", "strategy", None),
}


def _train_overrides(args) -> dict[str, dict]:
    overrides: dict[str, dict] = {"data": {}, "model": {}, "train": {}}
    for flag, (section, field, transform) in _TRAIN_FLAGS.items():
        value = getattr(args, flag)
        if value is None or value is False:
            continue
        overrides[section][field] = transform(value) if transform else value
    # A length given one way replaces a length saved the other way.
    for given, other in (
        ("steps", "epochs"),
        ("epochs", "steps"),
        ("decay_steps", "decay_epochs"),
        ("decay_epochs", "decay_steps"),
    ):
        if getattr(args, given) is not None:
            overrides["train"][other] = None
    return overrides


def _train(args):
    from pix2pix_tf.config import Config, preset
    from pix2pix_tf.train import resolve_config, train

    base = preset(args.preset) if args.preset else Config()
    config = resolve_config(args.workdir, base, _train_overrides(args))
    result = train(config, args.data, args.workdir, run_eagerly=args.run_eagerly)
    return EXIT_INTERRUPTED if result.interrupted else 0


def add_commands(sub):
    from pix2pix_tf.config import (
        DIRECTIONS,
        GAN_LOSSES,
        NORMS,
        PRECISIONS,
        PREPROCESS_MODES,
        PRESETS,
        RECEPTIVE_FIELDS,
        STRATEGIES,
    )

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
    g = p.add_argument_group("data")
    g.add_argument("--image-size", type=int, help="square crop size, multiple of 32 (default 256)")
    g.add_argument("--load-size", type=int, help="resize before the random crop (default size*286/256)")
    g.add_argument("--channels", type=int, choices=(1, 3))
    g.add_argument("--direction", choices=DIRECTIONS)
    g.add_argument("--preprocess", choices=PREPROCESS_MODES)
    g.add_argument("--no-flip", action="store_true", default=None, help="no random mirroring")
    g.add_argument("--batch-size", type=int)
    g.add_argument("--cache", action="store_true", default=None, help="keep decoded images in memory")
    g.add_argument("--skip-bad", action="store_true", default=None, help="skip unreadable or malformed files")
    g = p.add_argument_group("model")
    g.add_argument("--generator", choices=("unet", "encoder-decoder"))
    g.add_argument("--ngf", type=int, help="generator filters in the first layer (default 64)")
    g.add_argument("--ndf", type=int, help="discriminator filters in the first layer (default 64)")
    g.add_argument(
        "--norm", choices=NORMS, help="syncbatch: batch statistics over all replicas (for small per-replica batches)"
    )
    g.add_argument("--dropout", type=float)
    g.add_argument("--d-receptive-field", type=int, choices=RECEPTIVE_FIELDS)
    g.add_argument("--unconditional", action="store_true", default=None, help="D does not see the input")
    g = p.add_argument_group("objective and optimisation")
    g.add_argument("--gan-loss", choices=GAN_LOSSES)
    g.add_argument("--lambda-l1", type=float)
    g.add_argument("--no-gan", action="store_true", default=None, help="L1 only")
    g.add_argument("--no-l1", action="store_true", default=None, help="GAN term only")
    g.add_argument("--lr", type=float)
    g.add_argument("--beta-1", type=float)
    length = g.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="total steps (not additional)")
    length.add_argument("--epochs", type=int, help="total epochs (default 200)")
    decay = g.add_mutually_exclusive_group()
    decay.add_argument("--decay-steps", type=int, help="linear LR decay over the last N steps (default half)")
    decay.add_argument("--decay-epochs", type=int)
    g.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="auto (default): bfloat16 on TPUs and CPUs with native bfloat16, float16 on tensor-core GPUs, "
        "else float32; the choice is saved in config.json",
    )
    g.add_argument("--seed", type=int)
    g = p.add_argument_group("bookkeeping")
    g.add_argument("--checkpoint-every", type=int)
    g.add_argument("--keep-checkpoints", type=int)
    g.add_argument("--sample-every", type=int)
    g.add_argument("--log-every", type=int)
    g.add_argument(
        "--steps-per-call", type=int, help="train steps per tf.function call (default: sized to ~0.2 s per call)"
    )
    g.add_argument("--run-eagerly", action="store_true", help="no tf.function (debugging)")
    g = p.add_argument_group("devices")
    g.add_argument(
        "--strategy",
        choices=STRATEGIES,
        help="auto (default): the TF_CONFIG cluster if it lists several workers, else all GPUs if there are "
        "several and the batch splits over them, else one device; mirrored: every local GPU; "
        "multi_worker: the cluster in TF_CONFIG (run the same command on every worker, same --workdir); tpu. "
        "--batch-size is the global batch (docs/distributed.md)",
    )
    p.set_defaults(func=_train)
