"""`pix2pix-tf predict | evaluate | export | web | demo`: using a trained model."""

from __future__ import annotations

from pix2pix_tf.errors import Pix2PixError


def _predict(args):
    from pix2pix_tf.inference import load, predict

    if args.model and args.stochastic:
        raise Pix2PixError("--stochastic needs --workdir: exported models are deterministic")
    translator = load(args.model or args.workdir, stochastic=args.stochastic, num_threads=args.threads)
    predict(translator, args.input, args.output, half=args.input_half, native_size=args.native_size)


def _export(args):
    from pix2pix_tf.export import export

    variants = tuple(v for v in args.tflite.split(",") if v)
    export(
        args.workdir,
        args.out,
        tflite=variants,
        stochastic=args.stochastic,
        data_dir=args.data,
        tflite_threads=args.threads,
        web=args.web,
    )


def _web(args):
    from pix2pix_tf.shipped import shipped_model
    from pix2pix_tf.webapp.site import write_site

    if args.shipped and not args.out:
        raise Pix2PixError("--shipped needs --out DIR: the shipped model's folder is part of the installed package")
    out = write_site(shipped_model() if args.shipped else args.export, args.out)
    print(f"wrote {out}: serve it (python -m http.server --bind 127.0.0.1 -d {out}) and open http://127.0.0.1:8000/")


def _evaluate(args):
    from pix2pix_tf.artifacts import EvalDir, WorkDir
    from pix2pix_tf.evaluate import evaluate
    from pix2pix_tf.inference import load_generator

    generator, config, step = load_generator(args.workdir)
    out = args.out or WorkDir(args.workdir).evaluation(args.split, step)
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
    print(f"wrote {EvalDir(out).metrics} and {EvalDir(out).page}")


def _demo(args):
    from pix2pix_tf.demo import run_demo

    run_demo(args.workdir, minutes=args.minutes, steps=args.steps)


def add_commands(sub):
    p = sub.add_parser("predict", help="translate images with a trained or exported model")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--workdir", help="training work dir (config.json + checkpoints)")
    source.add_argument("--model", help="an exported SavedModel directory (or export DIR) or a .tflite file")
    p.add_argument("--input", required=True, help="an image file or a folder of images (any size)")
    p.add_argument(
        "--output",
        required=True,
        help="folder for the translated PNGs, named like the inputs (a.jpg.png and a.png.png where stems collide)",
    )
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
    p.add_argument("--threads", type=int, help="TFLite interpreter threads (default: the available cores)")
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
    p.add_argument(
        "--workdir",
        required=True,
        help="training work dir, or an earlier export dir: its SavedModel is kept and the TFLite variants made again",
    )
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
    p.add_argument(
        "--threads", type=int, help="TFLite threads for the checks and latency (default: the available cores)"
    )
    p.add_argument(
        "--web", action="store_true", help="also write OUT/web: a static web app running the TFLite models in a browser"
    )
    p.set_defaults(func=_export)

    p = sub.add_parser(
        "web",
        help="a static web app that runs an export's TFLite models in the browser (LiteRT.js)",
        description="Writes a folder (page, .tflite variants, LiteRT.js runtime) that any static file server "
        "can publish; the model runs in the visitor's browser and nothing leaves it. The runtime comes from "
        "the npm registry once (npm, pinned and verified) and is cached per user.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("export", nargs="?", help="an export dir with .tflite variants")
    source.add_argument("--shipped", action="store_true", help="the shipped demo model instead of EXPORT (needs --out)")
    p.add_argument("--out", help="the web app's folder: new, empty or an earlier web app (default EXPORT/web)")
    p.set_defaults(func=_web, needs_tensorflow=False)

    p = sub.add_parser("demo", help="synthesise facades, train, evaluate: the whole job in minutes")
    p.add_argument("--minutes", type=float, default=5.0, help="training time budget (default 5)")
    p.add_argument("--steps", type=int, help="train exactly N steps (within the budget) instead of filling it")
    p.add_argument("--workdir", default="runs/demo")
    p.set_defaults(func=_demo)
