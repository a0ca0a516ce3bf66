"""The `pix2pix-tf` command: argument parsing only; the work is in the library."""

from __future__ import annotations

import argparse
import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the output

from pix2pix_tf.errors import Pix2PixError, is_disk_full, short_message  # noqa: E402

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130  # 130 = 128 + SIGINT, as shells report Ctrl-C
DEBUG_ENV = "PIX2PIX_DEBUG"


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
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--direction", choices=DIRECTIONS, default="AtoB")
    p.add_argument("--preprocess", choices=PREPROCESS_MODES, default="resize_and_crop")
    p.add_argument("--no-flip", action="store_true")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable or malformed files")
    p.set_defaults(func=_data_show)


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


def _add_train_command(sub):
    from pix2pix_tf.config import DIRECTIONS, GAN_LOSSES, NORMS, PRECISIONS, PREPROCESS_MODES, PRESETS, RECEPTIVE_FIELDS

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
    g.add_argument("--norm", choices=NORMS)
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
    g.add_argument("--precision", choices=PRECISIONS)
    g.add_argument("--seed", type=int)
    g = p.add_argument_group("bookkeeping")
    g.add_argument("--checkpoint-every", type=int)
    g.add_argument("--keep-checkpoints", type=int)
    g.add_argument("--sample-every", type=int)
    g.add_argument("--log-every", type=int)
    g.add_argument("--run-eagerly", action="store_true", help="no tf.function (debugging)")
    p.set_defaults(func=_train)


def _predict(args):
    from pix2pix_tf.inference import load, predict

    if args.model and args.stochastic:
        raise Pix2PixError("--stochastic needs --workdir: exported models are deterministic")
    translator = load(args.model or args.workdir, stochastic=args.stochastic)
    predict(translator, args.input, args.output, half=args.input_half, native_size=args.native_size)


def _export(args):
    from pix2pix_tf.export import export

    variants = tuple(v for v in args.tflite.split(",") if v)
    export(args.workdir, args.out, tflite=variants, stochastic=args.stochastic, data_dir=args.data)


def _evaluate(args):
    from pix2pix_tf.config import eval_dir
    from pix2pix_tf.evaluate import evaluate
    from pix2pix_tf.inference import load_generator

    generator, config, step = load_generator(args.workdir)
    out = args.out or eval_dir(args.workdir, args.split, step)
    result = evaluate(
        generator,
        config,
        args.data,
        args.split,
        out,
        stochastic=args.stochastic,
        title=f"{args.workdir} at step {step}, {args.split} split",
    )
    m = result["mean"]
    print(f"{result['count']} images: L1 {m['l1']:.4f}, PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}")
    print(f"wrote {out}/metrics.json and {out}/index.html")


def _demo(args):
    from pix2pix_tf.demo import run_demo

    run_demo(args.workdir, minutes=args.minutes, steps=args.steps)


def _add_use_commands(sub):
    p = sub.add_parser("predict", help="translate images with a trained or exported model")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--workdir", help="training work dir (config.json + checkpoints)")
    source.add_argument("--model", help="an exported SavedModel directory (or export DIR) or a .tflite file")
    p.add_argument("--input", required=True, help="an image file or a folder of images (any size)")
    p.add_argument("--output", required=True, help="folder for the translated PNGs")
    p.add_argument("--stochastic", action="store_true", help="dropout on, as the paper's test mode")
    p.add_argument(
        "--native-size",
        action="store_true",
        help="translate at each image's own resolution (padded to the U-Net's multiple) instead of the model size",
    )
    p.add_argument(
        "--input-half",
        choices=("left", "right"),
        help="translate only this half of A|B images (e.g. 'right' for facades label maps)",
    )
    p.set_defaults(func=_predict)

    p = sub.add_parser("evaluate", help="L1 / PSNR / SSIM and an HTML results page")
    p.add_argument("--workdir", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--out", help="output folder (default WORKDIR/eval/SPLIT_stepN)")
    p.add_argument("--stochastic", action="store_true", help="dropout on, as the paper's test mode")
    p.set_defaults(func=_evaluate)

    from pix2pix_tf.config import TFLITE_VARIANTS

    p = sub.add_parser("export", help="SavedModel + TFLite export, verified against the Keras model")
    p.add_argument("--workdir", required=True)
    p.add_argument(
        "--out", required=True, help="export folder: new, empty or a previous export (replaced whole, atomically)"
    )
    p.add_argument(
        "--tflite",
        default=",".join(TFLITE_VARIANTS),
        help="comma-separated TFLite variants: float32,float16,int8,dynamic ('' for none)",
    )
    p.add_argument("--stochastic", action="store_true", help="add a serving_stochastic signature (dropout on)")
    p.add_argument("--data", help="dataset for int8 calibration and checks (default: the one trained on)")
    p.set_defaults(func=_export)

    p = sub.add_parser("demo", help="synthesise facades, train, evaluate: the whole job in minutes")
    p.add_argument("--minutes", type=float, default=5.0, help="training time budget (default 5)")
    p.add_argument("--steps", type=int, help="train exactly N steps (within the budget) instead of filling it")
    p.add_argument("--workdir", default="runs/demo")
    p.set_defaults(func=_demo)


def _serve(args):
    from pix2pix_tf.serve import Limits, serve

    limits = Limits(
        max_body_bytes=int(args.max_body_mb * 2**20), max_pixels=args.max_pixels, max_instances=args.max_instances
    )
    serve(
        args.model,
        host=args.host,
        port=args.port,
        name=args.name,
        limits=limits,
        max_batch=args.max_batch,
        batch_timeout_ms=args.batch_timeout_ms,
    )


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0; got {text}")
        return value

    return parse


def _add_serve_command(sub):
    p = sub.add_parser(
        "serve",
        help="serve a model: TensorFlow Serving's REST API and a drawing page",
        description="Serves MODEL with TensorFlow Serving's REST predict API under /v1/models/NAME, "
        "an upload endpoint (POST /translate) and a drawing page at /. Ctrl-C stops it.",
    )
    p.add_argument("model", nargs="?", help="export dir, SavedModel dir or work dir (default: the shipped demo model)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8501, help="TCP port (default 8501, TF Serving's REST port)")
    p.add_argument("--name", default="pix2pix", help="model name in /v1/models/NAME (default pix2pix)")
    p.add_argument("--max-batch", type=_positive(int), default=1, help="batch concurrent requests up to N rows")
    p.add_argument("--batch-timeout-ms", type=float, default=5.0, help="wait for a batch to fill (default 5)")
    p.add_argument("--max-body-mb", type=_positive(float), default=32.0, help="request body cap (default 32)")
    p.add_argument("--max-pixels", type=_positive(int), default=4096 * 4096, help="pixels per image cap")
    p.add_argument("--max-instances", type=_positive(int), default=64, help="images per request cap")
    p.set_defaults(func=_serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pix2pix-tf", description="pix2pix image-to-image translation")
    parser.add_argument("--debug", action="store_true", help=f"show the traceback of any error (or set {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_data_commands(sub)
    _add_train_command(sub)
    _add_use_commands(sub)
    _add_serve_command(sub)
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
        return EXIT_USAGE if isinstance(e, Pix2PixError) else EXIT_ERROR


def _one_line(error: Exception) -> str:
    """What the user sees of an error: a Pix2PixError's message, a summary of anything else."""
    if isinstance(error, Pix2PixError):
        return str(error)
    first = short_message(error)
    if is_disk_full(error):
        where = getattr(error, "filename", None)
        return f"no space left on device{f' writing {where}' if where else ''} ({first}); free some space and rerun"
    return (
        f"unexpected {type(error).__name__}: {first} "
        f"(rerun with --debug, or {DEBUG_ENV}=1, for the traceback; please report it)"
    )
