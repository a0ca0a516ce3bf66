"""`pix2pix-tf experiment`: trains every arm of the requested tables and scores it.

The experiment folder's layout is `artifacts.experimentdir`'s: its settings record,
data and segmenter per image size, one training work dir per arm and seed (plus its
scores when finished), and the results. A rerun skips arms whose scores are there, resumes arms with checkpoints (the
trainer does that) and starts the others, so an interrupted experiment continues
where it stopped.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np

from pix2pix_tf.artifacts.experimentdir import ArmRunDir, ExperimentDir
from pix2pix_tf.artifacts.files import read_json, write_json
from pix2pix_tf.config import DataConfig
from pix2pix_tf.data.files import find_pairs
from pix2pix_tf.data.pipeline import eval_dataset, to_uint8
from pix2pix_tf.data.synthetic import FACADE_PALETTE, synthesize
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.evaluate import image_metrics
from pix2pix_tf.experiments import plan
from pix2pix_tf.experiments.metrics import lab_histogram_intersection, labels_from_colors, sharpness_ratio
from pix2pix_tf.experiments.report import FIGURE_IMAGES, write_report
from pix2pix_tf.experiments.segmenter import load_or_train, score
from pix2pix_tf.inference import load_generator
from pix2pix_tf.models import generate
from pix2pix_tf.precision import cpu_model
from pix2pix_tf.train import NonFiniteLossError, train

# Settings a finished arm's numbers depend on; seeds and sizes may change between runs
# (more seeds add runs; another size is another arm).
_FIXED = ("steps", "batch_size", "ngf", "ndf", "segmenter_steps", "pairs", "quick")
# A label map is taken as using the palette if this share of its pixels is this close to a palette colour.
_PALETTE_SHARE, _PALETTE_DISTANCE = 0.9, 40.0


class TestSet:
    """The test split at one size: label maps (inputs), real photos (targets) and class ids."""

    def __init__(self, data_dir: Path, image_size: int):
        cfg = DataConfig(image_size=image_size, direction="BtoA")  # facades layout: A photo | B labels
        inputs, targets = [], []
        for source, target, _ in eval_dataset(find_pairs(data_dir, "test", cfg), cfg, batch_size=32):
            inputs.append(to_uint8(source).numpy())
            targets.append(to_uint8(target).numpy())
        self.inputs, self.targets = np.concatenate(inputs), np.concatenate(targets)
        self.labels = labels_from_colors(self.inputs, FACADE_PALETTE)


def check_data(data_dir: Path, image_size: int) -> None:
    """Refuses a dataset without train and test splits or whose label side (B) does not use the facades palette."""
    find_pairs(data_dir, "train", DataConfig(image_size=image_size, direction="BtoA"))
    labels = TestSet(data_dir, image_size).inputs.reshape(-1, 3).astype(np.float32)
    palette = FACADE_PALETTE[None].astype(np.float32)
    close = 0
    for chunk in np.array_split(labels, max(1, len(labels) // 65536)):  # pixels x classes x 3 floats, in pieces
        close += int(np.sum(np.min(np.linalg.norm(chunk[:, None, :] - palette, axis=-1), axis=1) <= _PALETTE_DISTANCE))
    share = close / len(labels)
    if share < _PALETTE_SHARE:
        raise Pix2PixError(
            f"{data_dir}: the label side (B, right half) of the test images does not use the facades palette "
            f"({share:.0%} of pixels within {_PALETTE_DISTANCE:g} of a palette colour, "
            f"expected >= {_PALETTE_SHARE:.0%}); "
            "the segmentation score needs label maps in pix2pix_tf.data.synthetic.FACADE_PALETTE"
        )


def _open_experiment(out: Path, settings: plan.Settings, data_dir: Path | None) -> None:
    """Creates the experiment folder, or checks that an existing one was made with the same settings."""
    record_path = ExperimentDir(out).record
    record = {**{k: getattr(settings, k) for k in _FIXED}, "data": str(data_dir.resolve()) if data_dir else None}
    if record_path.exists():
        old = read_json(record_path, "the experiment's settings")
        differ = [f"{k}: was {old.get(k)!r}, now {v!r}" for k, v in record.items() if old.get(k) != v]
        if differ:
            raise Pix2PixError(
                f"{out} holds an experiment run with other settings ({'; '.join(differ)}); "
                "use the same settings to continue it, or a new --out"
            )
        return
    if out.exists() and not out.is_dir():
        raise Pix2PixError(f"--out {out} is a file; give a folder (new, empty, or an earlier experiment)")
    if out.exists() and any(out.iterdir()):
        raise Pix2PixError(f"{out} exists and is not an experiment folder (no {record_path.name}); use a new --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise Pix2PixError(f"--out {out}: cannot create the folder ({e.strerror})") from None
    write_json(record_path, record)


def _machine() -> dict:
    import tensorflow as tf

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
    }


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )


def score_arm(workdir: Path, test: TestSet, segmenter) -> tuple[dict[str, float], np.ndarray]:
    """Every per-arm number: FCN-score analogue, L1/PSNR/SSIM, sharpness ratio, Lab intersection.

    Returns:
        (scores, the generated test photos as uint8).
    """
    generator, config, step = load_generator(workdir)
    x = test.inputs.astype(np.float32) / 127.5 - 1.0
    outputs = np.concatenate([to_uint8(generate(generator, x[i : i + 16])).numpy() for i in range(0, len(x), 16)])
    per_image = [image_metrics(o, t) for o, t in zip(outputs, test.targets, strict=True)]
    scores = {
        "step": step,
        **score(segmenter, outputs, test.labels),
        **{k: float(np.mean([min(m[k], 100.0) for m in per_image])) for k in ("l1", "psnr", "ssim")},
        "sharpness": sharpness_ratio(outputs, test.targets),
        **{f"lab_{k}": v for k, v in lab_histogram_intersection(outputs, test.targets).items()},
    }
    return scores, outputs


def run_experiment(
    which: str,
    out: str | Path,
    data_dir: str | Path | None = None,
    image_size: int | None = None,
    steps: int | None = None,
    seeds: int | None = None,
    quick: bool = False,
    command: str | None = None,
    segmenter_steps: int | None = None,
    progress: bool = True,
) -> dict:
    """Trains and scores the arms of one table ("objective", "generator", "discriminator") or "all".

    Args:
        which: the table, or "all".
        out: the experiment folder (new, empty, or an earlier run of the same settings).
        data_dir: a facades-layout dataset (A photo | B label map in the facades palette);
            None synthesises one per image size inside `out`.
        image_size: one image side for every table (default: 64, and 128 for Table 3).
        steps: training steps per arm.
        seeds: runs per arm (default: 2 for Tables 1 and 2, 1 for Table 3).
        quick: tiny settings that run the whole machinery in a couple of minutes.
        command: the command line, recorded in the results.
        segmenter_steps: training steps of the FCN-score analogue's segmenter (default: the
            plan's, 1500, or 20 in quick mode); fewer fit a short budget, such as a notebook's,
            at the price of a lower ceiling (its ground-truth score).
        progress: let each run print its own progress (`train`'s); the runner's line as a
            run starts and as it ends is printed either way.

    Returns:
        The results (as written to results.json).
    """
    if which != "all" and which not in plan.TABLES:
        raise Pix2PixError(f"unknown experiment {which!r}; choose from {', '.join(plan.TABLES)} or all")
    tables = plan.TABLES if which == "all" else (which,)
    base = plan.QUICK if quick else plan.DEFAULT
    settings = plan.Settings(
        **{
            **base.to_dict(),
            "steps": base.steps if steps is None else steps,
            "segmenter_steps": base.segmenter_steps if segmenter_steps is None else segmenter_steps,
            "seeds": {t: base.seeds[t] if seeds is None else seeds for t in tables},
            "sizes": {t: base.sizes[t] if image_size is None else image_size for t in tables},
        }
    )
    out = Path(out)
    table_rows = plan.rows(tables, settings)  # refuses settings the tables cannot use, before anything is written
    arms = plan.arms(table_rows)
    sizes = sorted({arm.image_size for arm in arms})
    data_dir = Path(data_dir) if data_dir is not None else None
    if data_dir is not None:
        if not data_dir.is_dir():
            raise Pix2PixError(f"--data {data_dir}: folder not found")
        for size in sizes:
            check_data(data_dir, size)
    _open_experiment(out, settings, data_dir)
    started = time.monotonic()
    if quick:
        print("quick mode: a smoke test of the machinery; its numbers mean nothing")

    data, tests, segmenters, references = {}, {}, {}, {}
    for size in sizes:
        data[size] = data_dir or ExperimentDir(out).data(size)
        if data_dir is None and not (data[size] / "test").is_dir():
            print(f"synthesising {settings.pairs} facades at {size} px in {data[size]}")
            synthesize("facades", data[size], count=settings.pairs, size=size, seed=0)
        tests[size] = TestSet(data[size], size)
        cache = ExperimentDir(out).segmenter(size)
        print(f"segmenter for {size} px: trained on the real training photos (cached in {cache.root})")
        segmenters[size] = load_or_train(cache.root, data[size], FACADE_PALETTE, size, steps=settings.segmenter_steps)
        test = tests[size]
        mismatched = np.roll(test.labels, 1, axis=0)  # each photo judged against another image's labels
        references[size] = {
            "ground_truth": score(segmenters[size], test.targets, test.labels),
            "mismatched": score(segmenters[size], test.targets, mismatched),
            "test_images": len(test.targets),
        }
        gt, mm = references[size]["ground_truth"], references[size]["mismatched"]
        print(
            f"  {size} px FCN-score analogue (pixel / class / IoU): real test photos "
            + " / ".join(f"{gt[k]:.2f}" for k in plan.FCN_KEYS)
            + ", against mismatched labels "
            + " / ".join(f"{mm[k]:.2f}" for k in plan.FCN_KEYS)
        )

    n_seeds = plan.seeds_per_arm(table_rows, settings)
    runs = [(arm, seed) for arm in arms for seed in range(n_seeds[arm])]
    todo = [(arm, seed) for arm, seed in runs if not _finished(out, arm, seed, settings)]
    print(f"{len(runs)} runs of {len(arms)} arms, {len(runs) - len(todo)} already finished")
    # Seconds per (step x pixel) measured in this call, per kind of run: with and without a D.
    measured: dict[bool, list[float]] = {True: [0.0, 0.0], False: [0.0, 0.0]}
    for index, (arm, seed) in enumerate(runs, 1):
        workdir = _run_dir(out, arm, seed)
        if (arm, seed) not in todo:
            continue
        eta = _eta(todo, settings, measured)
        eta = f"ETA {_hms(eta)}" if eta is not None else "ETA after the first run"
        print(
            f"[{index}/{len(runs)}] {arm.key} seed {seed}: {settings.steps} steps "
            f"| elapsed {_hms(time.monotonic() - started)} | {eta}",
            flush=True,
        )
        t0 = time.monotonic()
        test = tests[arm.image_size]
        try:
            result = train(arm.config(settings, seed), data[arm.image_size], workdir.root, progress=progress)
        except NonFiniteLossError as e:
            # A GAN run can diverge; a rerun would diverge again (same seed, same data), so the
            # run is recorded as diverged and the experiment goes on.
            scores = {"step": settings.steps, "seed": seed, "diverged": str(e), "seconds": time.monotonic() - t0}
            workdir.root.mkdir(parents=True, exist_ok=True)
            np.save(workdir.outputs, np.zeros_like(test.targets[:FIGURE_IMAGES]))
            write_json(workdir.scores, scores)
            todo.remove((arm, seed))
            print(f"[{index}/{len(runs)}] {arm.key} seed {seed}: diverged ({e})", flush=True)
            continue
        if result.interrupted:
            print(f"experiment interrupted during {arm.key} seed {seed}; rerun the same command to resume")
            raise KeyboardInterrupt  # the checkpoint is kept
        scores, outputs = score_arm(workdir.root, test, segmenters[arm.image_size])
        scores.update(seed=seed, seconds=time.monotonic() - t0)
        np.save(workdir.outputs, outputs[:FIGURE_IMAGES])
        write_json(workdir.scores, scores)
        todo.remove((arm, seed))
        kind = measured[arm.objective != "L1"]
        kind[0] += (result.step - result.start_step) * arm.image_size**2
        kind[1] += time.monotonic() - t0
        print(
            f"[{index}/{len(runs)}] {arm.key} seed {seed}: class IoU {scores['class_iou']:.3f}, "
            f"sharpness {scores['sharpness']:.2f}, PSNR {scores['psnr']:.2f} dB ({_hms(scores['seconds'])})",
            flush=True,
        )

    scores = {
        arm.key: {seed: read_json(_run_dir(out, arm, seed).scores, "an arm's scores") for seed in range(n_seeds[arm])}
        for arm in arms
    }
    outputs = {arm.key: np.load(_run_dir(out, arm, 0).outputs) for arm in arms}
    return write_report(
        out,
        table_rows,
        settings,
        scores,
        references,
        figures={size: (tests[size].inputs, tests[size].targets) for size in sizes},
        outputs=outputs,
        run_info={
            "command": command
            or (
                f"run_experiment({which!r}, {str(out)!r}, data_dir={data_dir and str(data_dir)!r}, "
                f"image_size={image_size}, steps={steps}, seeds={seeds}, quick={quick}"
                + (f", segmenter_steps={segmenter_steps})" if segmenter_steps is not None else ")")
            ),
            "machine": _machine(),
            "wall_seconds_this_call": time.monotonic() - started,
            "arm_seconds_total": sum(s["seconds"] for per_seed in scores.values() for s in per_seed.values()),
            "data": str(data_dir) if data_dir else "synthetic facades (pix2pix-tf data synth facades, seed 0)",
        },
    )


def _eta(todo, settings: plan.Settings, measured: dict[bool, list[float]]) -> float | None:
    """Seconds left for `todo`, from this call's measured speed of runs with a D and without."""
    rates = {kind: seconds / cost for kind, (cost, seconds) in measured.items() if cost}
    if not rates:
        return None
    fallback = max(rates.values())  # a kind not timed yet is assumed as slow as the slower one timed
    return sum(settings.steps * a.image_size**2 * rates.get(a.objective != "L1", fallback) for a, _ in todo)


def _run_dir(out: Path, arm: plan.Arm, seed: int) -> ArmRunDir:
    return ExperimentDir(out).run(arm.key, seed)


def _finished(out: Path, arm: plan.Arm, seed: int, settings: plan.Settings) -> bool:
    run = _run_dir(out, arm, seed)
    path = run.scores
    if not path.is_file() or not run.outputs.is_file():
        return False
    try:
        return read_json(path, "an arm's scores").get("step") == settings.steps
    except Pix2PixError:  # damaged: scored again
        return False
