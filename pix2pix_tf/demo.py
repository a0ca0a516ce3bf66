"""`pix2pix-tf demo`: the whole job on built-in data, in a few minutes on a laptop CPU.

Synthesises the facades dataset, trains labels -> photo at 64 px within a time
budget, scores the model against the same network at step 0, exports it as a
SavedModel and TFLite models, and says where everything went.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras

from pix2pix_tf.config import Config, DataConfig, ModelConfig, TrainConfig
from pix2pix_tf.data.files import find_pairs
from pix2pix_tf.data.synthetic import synthesize
from pix2pix_tf.evaluate import evaluate, load_generator
from pix2pix_tf.export import export
from pix2pix_tf.models import generator_for
from pix2pix_tf.train import resolve_config, train

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


def run_demo(workdir: str | Path = "runs/demo", minutes: float = 5.0, seed: int = 0) -> dict:
    """Runs the demo; a rerun in the same work dir resumes instead of starting over.

    Args:
        workdir: where data, the run and the reports go.
        minutes: training time budget.
        seed: seed of the data and of the run.

    Returns:
        {"step0": metrics, "trained": metrics, "steps": n, "paths": {...}}.
    """
    workdir = Path(workdir)
    data_dir, run_dir = workdir / "data", workdir / "run"
    if not (data_dir / "test").is_dir():
        synthesize("facades", data_dir, count=DEMO_PAIRS, size=DEMO_CONFIG.data.image_size, seed=seed)
    base = DEMO_CONFIG.replace(train={"seed": seed})
    config = resolve_config(run_dir, base, {})
    pairs = find_pairs(data_dir, "train", config.data)

    keras.utils.set_random_seed(seed)  # the same initial weights as the training run
    untrained = generator_for(config, seed=seed, precision="float32")
    step0 = evaluate(untrained, config, data_dir, "test", workdir / "eval_step0", title="demo at step 0")

    start = time.perf_counter()
    steps = config.train.steps
    if steps is None or steps <= CALIBRATION_STEPS:  # first run: measure the speed, then fill the budget
        probe = train(config.replace(train={"steps": CALIBRATION_STEPS}), data_dir, run_dir, pairs=pairs)
        remaining = minutes * 60 - (time.perf_counter() - start)
        steps = CALIBRATION_STEPS + max(0, int(remaining / probe.seconds_per_step))
        print(f"{probe.seconds_per_step * 1000:.0f} ms per step: training {steps} steps in about {minutes:g} min")
    result = train(config.replace(train={"steps": steps}), data_dir, run_dir, pairs=pairs)

    generator, config, step = load_generator(run_dir)
    trained = evaluate(generator, config, data_dir, "test", workdir / "eval", title=f"demo at step {step}")
    export(run_dir, workdir / "export", data_dir=data_dir)
    paths = {
        "sample grid": str(result.sample_path or run_dir / "samples" / "latest.png"),
        "tensorboard": f"tensorboard --logdir {run_dir / 'logs'}",
        "results page": str(workdir / "eval" / "index.html"),
        "exported models": f"{workdir / 'export'} (SavedModel, TFLite; report.md)",
        "work dir": str(run_dir),
    }
    summary = {"steps": step, "step0": step0["mean"], "trained": trained["mean"], "paths": paths}
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nfacades labels -> photo, {trained['count']} test images, 64 px:")
    print(f"  {'':10}{'L1':>8}{'PSNR dB':>9}{'SSIM':>8}")
    for name, m in (("step 0", step0["mean"]), (f"step {step}", trained["mean"])):
        print(f"  {name:10}{m['l1']:8.4f}{m['psnr']:9.2f}{m['ssim']:8.4f}")
    for name, path in paths.items():
        print(f"  {name}: {path}")
    return summary
