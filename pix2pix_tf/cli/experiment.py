"""`pix2pix-tf experiment`: the paper's ablation tables, rerun offline."""

from __future__ import annotations

import sys


def _experiment(args):
    from pix2pix_tf.artifacts.experimentdir import ExperimentDir
    from pix2pix_tf.experiments.report import VERDICTS
    from pix2pix_tf.experiments.runner import run_experiment

    results = run_experiment(
        args.table,
        args.out,
        data_dir=args.data,
        image_size=args.image_size,
        steps=args.steps,
        seeds=args.seeds,
        quick=args.quick,
        command=" ".join(["pix2pix-tf", *sys.argv[1:]]),
    )
    folder = ExperimentDir(args.out)
    print(f"results: {folder.results_text}, {folder.results}, figures in {folder.figures}/")
    for claim in results["claims"]:
        print(f"  {claim['claim']}: {VERDICTS[claim['held']]} ({claim['evidence']})")
    if results["quick"]:
        print(results["note"])


def add_commands(sub):
    from pix2pix_tf.experiments.plan import DEFAULT, QUICK, TABLES

    p = sub.add_parser(
        "experiment",
        help="rerun the paper's ablations (Tables 1-3) offline with a segmentation score",
        description=(
            "Trains every arm of a table with the same budget and seeds and scores it with an FCN-score "
            "analogue. Rerunning the same command skips finished runs and resumes interrupted ones."
        ),
    )
    p.add_argument(
        "table", choices=[*TABLES, "all"], help="objective (Table 1), generator (2), discriminator (3), or all"
    )
    p.add_argument("--out", required=True, help="experiment folder: new, empty, or an earlier run to continue")
    p.add_argument(
        "--data", help="facades-layout dataset (A photo | B label map in the facades palette); default: synthesised"
    )
    p.add_argument(
        "--image-size",
        type=int,
        help=f"image side for every table (default: {DEFAULT.sizes['objective']}, "
        f"and {DEFAULT.sizes['discriminator']} for Table 3 so that the paper's fields keep their share of the image)",
    )
    p.add_argument("--steps", type=int, help=f"training steps per run (default {DEFAULT.steps}; quick {QUICK.steps})")
    p.add_argument(
        "--seeds",
        type=int,
        help="seeds per arm for every table (default: 2 for Tables 1 and 2, 1 for Table 3; quick: 1)",
    )
    p.add_argument(
        "--quick", action="store_true", help="tiny settings: tests the machinery in minutes, numbers mean nothing"
    )
    p.set_defaults(func=_experiment)
