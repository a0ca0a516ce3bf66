"""`pix2pix-tf demo`: the whole job on built-in data, in a few minutes on a laptop CPU.

Synthesises the facades dataset, trains labels -> photo at 64 px within a time
budget, scores the model against the same network at step 0, exports it as a
SavedModel and TFLite models, and says where everything went.
"""

from __future__ import annotations

from pathlib import Path

import keras

from pix2pix_tf.artifacts.demodir import DemoDir
from pix2pix_tf.artifacts.evaldir import EvalDir
from pix2pix_tf.artifacts.files import read_json, write_json
from pix2pix_tf.artifacts.workdir import resolve_config
from pix2pix_tf.checkpoints import checkpoint_step
from pix2pix_tf.config import Config, DataConfig, ModelConfig, TrainConfig
from pix2pix_tf.data.files import find_pairs
from pix2pix_tf.data.synthetic import synthesize
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.evaluate import evaluate
from pix2pix_tf.export import export
from pix2pix_tf.inference import load_generator
from pix2pix_tf.models import generator_for
from pix2pix_tf.train import TrainResult, pacing, train

# 64 px, a quarter-width generator (2.2 M parameters, so the exported SavedModel and
# TFLite models ship in saved_models/ within 25 MB) and a half-width discriminator.
# Labels -> photo is B -> A in the facades layout.
DEMO_CONFIG = Config(
    data=DataConfig(image_size=64, batch_size=4, direction="BtoA"),
    model=ModelConfig(ngf=16, ndf=32),
    train=TrainConfig(sample_every=250, checkpoint_every=500, log_every=50),
)
DEMO_PAIRS = 400
CALIBRATION_STEPS = 30


def run_demo(workdir: str | Path = "runs/demo", minutes: float = 5.0, seed: int = 0, steps: int | None = None) -> dict:
    """Runs the demo; a rerun in the same work dir resumes instead of starting over.

    The run's length is fixed once, on the first run: the speed measured on a few
    steps, times the budget (recorded in WORKDIR/demo.json). Training also stops at
    the budget's end whatever the measurement said, keeping a checkpoint.

    Args:
        workdir: where data, the run and the reports go.
        minutes: training time budget.
        seed: seed of the data and of the run.
        steps: train exactly this many steps instead of filling the budget (for
            reproducible runs and tests); still stopped at the budget's end.

    Returns:
        {"step0": metrics, "trained": metrics, "steps": n, "paths": {...}}.
    """
    demo = DemoDir(workdir)
    if not (minutes > 0 and minutes < 60 * 24 * 365):
        raise Pix2PixError(f"--minutes must be a positive number of minutes; got {minutes}")
    data_dir, run, record = demo.data, demo.run, demo.record
    run_dir = run.root
    if not (data_dir / "test").is_dir():
        synthesize("facades", data_dir, count=DEMO_PAIRS, size=DEMO_CONFIG.data.image_size, seed=seed)
    base = DEMO_CONFIG.replace(train={"seed": seed})
    # The schedule is the demo's own, also after a speed probe saved its config.json.
    config = resolve_config(run_dir, base, {"train": {"decay_steps": base.train.decay_steps}})
    pairs = find_pairs(data_dir, "train", config.data)

    keras.utils.set_random_seed(seed)  # the same initial weights as the training run
    untrained = generator_for(config, seed=seed, precision="float32")
    step0 = evaluate(untrained, config, data_dir, "test", demo.untrained_results, title="demo at step 0")

    deadline = pacing.clock() + minutes * 60
    if steps is None and record.exists():
        steps = read_json(record, "the demo's record of its run length").get("steps")
    if steps is None:
        # No length fixed yet (a first run, or one stopped while calibrating): measure the
        # speed on a few steps from wherever the run is, then fill the budget.
        # The probe's steps are the run's first: they train at the rate of the real schedule's
        # constant phase (no decay), not on a schedule of their own that decays to zero.
        probe_steps = checkpoint_step(run.checkpoints) + CALIBRATION_STEPS
        probe_config = config.replace(train={"steps": probe_steps, "decay_steps": 0, "decay_epochs": None})
        probe = _stop_if_interrupted(train(probe_config, data_dir, run_dir, pairs=pairs, deadline=deadline))
        steps = probe.step
        if probe.seconds_per_step:
            steps = probe_steps + max(0, int((deadline - pacing.clock()) / probe.seconds_per_step))
            print(f"{probe.seconds_per_step * 1000:.0f} ms per step: training {steps} steps in about {minutes:g} min")
        write_json(record, {"steps": steps, "minutes": minutes})
    result = _stop_if_interrupted(
        train(config.replace(train={"steps": steps}), data_dir, run_dir, pairs=pairs, deadline=deadline)
    )

    generator, config, step = load_generator(run_dir)
    # Inside the run dir, where export's model card looks for an evaluation of the exported step.
    results = run.evaluation("test", step)
    trained = evaluate(generator, config, data_dir, "test", results, title=f"demo at step {step}")
    export(run_dir, demo.export.root, data_dir=data_dir)
    paths = {
        "sample grid": str(result.sample_path or run.latest_sample),
        "tensorboard": f"tensorboard --logdir {run.logs}",
        "results page": str(EvalDir(results).page),
        "exported models": f"{demo.export.root} (SavedModel, TFLite; {demo.export.report_text.name})",
        "serve it": f"pix2pix-tf serve {demo.export.root}",
        "work dir": str(run_dir),
    }
    summary = {"steps": step, "step0": step0["mean"], "trained": trained["mean"], "paths": paths}
    write_json(demo.summary, summary)
    print(f"\nfacades labels -> photo, {trained['count']} test images, 64 px:")
    print(f"  {'':10}{'L1':>8}{'PSNR dB':>9}{'SSIM':>8}")
    for name, m in (("step 0", step0["mean"]), (f"step {step}", trained["mean"])):
        print(f"  {name:10}{m['l1']:8.4f}{m['psnr']:9.2f}{m['ssim']:8.4f}")
    for name, path in paths.items():
        print(f"  {name}: {path}")
    return summary


def _stop_if_interrupted(result: TrainResult) -> TrainResult:
    # Ctrl-C stops the whole demo, not just the training phase; the checkpoint is kept
    # and a rerun continues from it.
    if result.interrupted:
        raise KeyboardInterrupt
    return result
