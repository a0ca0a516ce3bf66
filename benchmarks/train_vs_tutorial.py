"""This package's trainer against the TensorFlow pix2pix tutorial's recipe, side by side in one process.

    python benchmarks/train_vs_tutorial.py              # writes benchmarks/train_vs_tutorial.json
    python benchmarks/train_vs_tutorial.py --rounds 15  # more rounds where the machine is noisy
    python benchmarks/train_vs_tutorial.py --quick      # a smoke test of the script

The Markdown tables go to stdout (and to `--markdown PATH` if given); the hand-written
parts of docs/performance.md and the README quote them, so they are updated by hand.

The tutorial recipe is written here from its published description (tensorflow.org
"pix2pix: Image-to-image translation with a conditional GAN"): Conv + BatchNorm +
LeakyReLU (Keras' default slope 0.3) down-sampling, BatchNorm on the 1x1 bottleneck,
ConvTranspose + BatchNorm (+ Dropout 0.5) + ReLU up-sampling, the 70x70 PatchGAN,
binary cross-entropy, D's loss not halved, Adam(2e-4, 0.5), two tapes in one
tf.function, one call per step, summaries written inside the step.

Every comparison is at equal precision (float32 against float32, and bfloat16 against
bfloat16 where the CPU has native bfloat16, i.e. where `auto` picks it; `--precisions`
overrides), plus default against default (this package's `auto` against the tutorial
as published, float32). Rounds are interleaved: each round runs the tutorial and this
package at one precision back to back (which goes first alternates), and every ratio is
taken within a round, then reported as median [min, max] over the rounds.

Measured, per configuration (256 px batch 1 ngf 64, the paper's; 64 px batch 4 ngf 16,
the demo's, notebooks' and experiments'):
  * train step: each contestant on the same data tensor, timed to completion, no
    summaries on either side; this package with its default steps per call;
  * the floor: step FLOPs counted from each graph over the matmul throughput measured
    in this run;
  * at the small size, whole loops on the same files, with the same settings on both
    sides: the trainer's defaults (`TrainConfig`: loss scalars every 10 steps, a sample
    grid every 200, a checkpoint every 500), which `pix2pix_tf.train.train` runs
    unchanged and the tutorial's loop gets in place of its own cadences. Both are timed
    by one ruler: the wall time between their own TensorBoard events at two steps, so
    whatever either loop does in between (input, steps, summary writes, the sample) is
    on the clock;
  * the input pipeline's share, peak RSS of `pix2pix-tf train` at 256 px batch 1,
    inference latency at 256 px (Keras, SavedModel, each TFLite variant), and a quality
    check: the auto precision's test PSNR against float32 after the same steps.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from pix2pix_tf.artifacts import WorkDir  # noqa: E402
from pix2pix_tf.config import Config, DataConfig, ModelConfig, TrainConfig  # noqa: E402
from pix2pix_tf.data.files import find_pairs  # noqa: E402
from pix2pix_tf.data.pipeline import train_dataset  # noqa: E402
from pix2pix_tf.data.synthetic import synthesize  # noqa: E402
from pix2pix_tf.evaluate import evaluate  # noqa: E402
from pix2pix_tf.inference import available_cores, load, load_generator  # noqa: E402
from pix2pix_tf.precision import NATIVE_BF16_CPU_FLAGS, cpu_flags, cpu_model, resolve  # noqa: E402
from pix2pix_tf.train import Pix2Pix, Schedule, train  # noqa: E402
from pix2pix_tf.train.pacing import Pacer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZES = {
    "256 px, batch 1, ngf 64, ndf 64": dict(image_size=256, batch_size=1, ngf=64, ndf=64),
    "64 px, batch 4, ngf 16, ndf 32": dict(image_size=64, batch_size=4, ngf=16, ndf=32),
}


# ----------------------------------------------------------------- the tutorial's recipe


def _tutorial_models(size: int, ngf: int, ndf: int, dtype):
    init = keras.initializers.RandomNormal(0.0, 0.02)  # the tutorial shares one instance

    def down(filters, batchnorm=True):
        block = keras.Sequential()
        block.add(keras.layers.Conv2D(filters, 4, 2, "same", kernel_initializer=init, use_bias=False, dtype=dtype))
        if batchnorm:
            block.add(keras.layers.BatchNormalization(dtype=dtype))
        block.add(keras.layers.LeakyReLU(dtype=dtype))
        return block

    def up(filters, dropout=False):
        block = keras.Sequential()
        block.add(
            keras.layers.Conv2DTranspose(filters, 4, 2, "same", kernel_initializer=init, use_bias=False, dtype=dtype)
        )
        block.add(keras.layers.BatchNormalization(dtype=dtype))
        if dropout:
            block.add(keras.layers.Dropout(0.5, dtype=dtype))
        block.add(keras.layers.ReLU(dtype=dtype))
        return block

    depth = int(np.log2(size))  # 8 at 256: down to 1x1, with batch norm there too
    widths = [min(ngf * 2**i, ngf * 8) for i in range(depth)]
    downs = [down(widths[0], batchnorm=False)] + [down(w) for w in widths[1:]]
    ups = [up(w, dropout=i < 3) for i, w in enumerate(reversed(widths[:-1]))]
    inputs = keras.Input((size, size, 3))
    x, skips = inputs, []
    for block in downs:
        x = block(x)
        skips.append(x)
    for block, skip in zip(ups, reversed(skips[:-1]), strict=True):
        x = keras.layers.Concatenate(dtype=dtype)([block(x), skip])
    out = keras.layers.Conv2DTranspose(3, 4, 2, "same", kernel_initializer=init, activation="tanh", dtype="float32")(x)
    generator = keras.Model(inputs, out)

    inp, tar = keras.Input((size, size, 3)), keras.Input((size, size, 3))
    x = keras.layers.Concatenate(dtype=dtype)([inp, tar])
    x = down(ndf, batchnorm=False)(x)
    x = down(ndf * 2)(x)
    x = down(ndf * 4)(x)
    x = keras.layers.ZeroPadding2D(dtype=dtype)(x)
    x = keras.layers.Conv2D(ndf * 8, 4, 1, kernel_initializer=init, use_bias=False, dtype=dtype)(x)
    x = keras.layers.LeakyReLU(dtype=dtype)(keras.layers.BatchNormalization(dtype=dtype)(x))
    x = keras.layers.ZeroPadding2D(dtype=dtype)(x)
    logits = keras.layers.Conv2D(1, 4, 1, kernel_initializer=init, dtype="float32")(x)
    return generator, keras.Model([inp, tar], logits)


class Tutorial:
    """The tutorial's train step; for the loop also its summaries, sample images and checkpoint.

    Args:
        logdir: where the loop's summaries go; None (the step table) writes none.
        log_every: summaries for the steps (counted from 1) that are multiples of this. The
            tutorial's own cadence is every step; the loop table gives it the trainer's.
    """

    def __init__(self, size, ngf, ndf, precision, logdir=None, log_every=1):
        dtype = None if precision == "float32" else precision
        self.generator, self.discriminator = _tutorial_models(size, ngf, ndf, dtype)
        self.g_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.d_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.bce = keras.losses.BinaryCrossentropy(from_logits=True)
        self.writer = tf.summary.create_file_writer(logdir) if logdir else None
        self.log_every = log_every
        self.checkpoint = tf.train.Checkpoint(
            generator_optimizer=self.g_opt,
            discriminator_optimizer=self.d_opt,
            generator=self.generator,
            discriminator=self.discriminator,
        )
        self.step = tf.function(self._step)

    def _step(self, inp, tar, step=None):
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            out = self.generator(inp, training=True)
            real = self.discriminator([inp, tar], training=True)
            fake = self.discriminator([inp, out], training=True)
            gan = self.bce(tf.ones_like(fake), fake)
            l1 = tf.reduce_mean(tf.abs(tar - tf.cast(out, tar.dtype)))
            g_loss = gan + 100 * l1
            d_loss = self.bce(tf.ones_like(real), real) + self.bce(tf.zeros_like(fake), fake)
        g_grads = g_tape.gradient(g_loss, self.generator.trainable_variables)
        d_grads = d_tape.gradient(d_loss, self.discriminator.trainable_variables)
        self.g_opt.apply_gradients(zip(g_grads, self.generator.trainable_variables))
        self.d_opt.apply_gradients(zip(d_grads, self.discriminator.trainable_variables))
        if self.writer is not None:
            # Inside the step, as in the tutorial. The tutorial logs at step // 1000; the step
            # itself is used here so that the events line up with the trainer's.
            with self.writer.as_default(step=step), tf.summary.record_if(step % self.log_every == 0):
                for name, value in (("gen_total_loss", g_loss), ("gen_gan_loss", gan), ("gen_l1_loss", l1)):
                    tf.summary.scalar(name, value)
                tf.summary.scalar("disc_loss", d_loss)
        return g_loss

    def save_sample(self, examples, workdir: WorkDir, step: int) -> None:
        """The tutorial's `generate_images` (G with training=True), written as the trainer writes its samples."""
        inp, tar = examples
        out = tf.cast(self.generator(inp, training=True), tf.float32)
        rows = tf.concat([tf.concat(tf.unstack(images), axis=0) for images in (inp, out, tar)], axis=1)
        image = tf.cast(tf.round(tf.clip_by_value((rows + 1) * 127.5, 0, 255)), tf.uint8)
        workdir.save_sample(tf.io.encode_png(image).numpy(), step)
        with self.writer.as_default(step=step):
            tf.summary.image("input | output | target", image[None], max_outputs=1)


def _tutorial_pair(path, size: int, load_size: int, jitter: bool):
    """The tutorial's load_image_train / load_image_test: A|B JPEG -> (input, real) in [-1, 1]."""
    image = tf.cast(tf.io.decode_jpeg(tf.io.read_file(path)), tf.float32)
    w = tf.shape(image)[1] // 2
    real, inp = image[:, :w, :], image[:, w:, :]  # facades: photo | labels, labels -> photo
    both = tf.stack([inp, real])
    both = tf.image.resize(both, [load_size, load_size], method=tf.image.ResizeMethod.NEAREST_NEIGHBOR)
    if jitter:
        both = tf.image.random_crop(both, [2, size, size, 3])
        both = tf.cond(tf.random.uniform(()) > 0.5, lambda: tf.image.flip_left_right(both), lambda: both)
    both = both / 127.5 - 1
    return both[0], both[1]


def _tutorial_dataset(data_dir: Path, size: int, batch: int) -> tf.data.Dataset:
    """The tutorial's training pipeline: decode the A|B JPEG, resize to 286, random crop, mirror, [-1, 1]."""
    files = sorted(str(p) for p in (data_dir / "train").glob("*.jpg"))
    return (
        tf.data.Dataset.from_tensor_slices(files)
        .shuffle(len(files))
        .map(lambda path: _tutorial_pair(path, size, size * 286 // 256, True), num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch)
        .repeat()
    )


def _tutorial_examples(data_dir: Path, size: int, count: int):
    """One batch of the first `count` val pairs through the tutorial's test pipeline, for the sample images."""
    files = sorted(str(p) for p in (data_dir / "val").glob("*.jpg"))[:count]
    dataset = tf.data.Dataset.from_tensor_slices(files).map(lambda path: _tutorial_pair(path, size, size, False))
    return next(iter(dataset.batch(count)))


# ----------------------------------------------------------------- measuring


def _flops(concrete) -> float:
    """FLOPs of a traced function (`tf.function(...).get_concrete_function(...)`), counted from its graph."""
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return float(tf.compat.v1.profiler.profile(graph=concrete.graph, options=options).total_float_ops)


def matmul_ceiling(dtype: str, n: int = 2048, reps: int = 10) -> float:
    """Measured matmul throughput (FLOP/s) of this machine in `dtype`."""
    a = tf.cast(tf.random.uniform((n, n)), dtype)
    f = tf.function(lambda a: tf.reduce_sum(tf.cast(tf.linalg.matmul(a, a), tf.float32)))
    float(f(a))
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        float(f(a))
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def _config(size, batch, ngf, ndf, precision, steps=100_000) -> Config:
    """The given sizes and precision; every other setting at its default."""
    return Config(
        data=DataConfig(image_size=size, batch_size=batch, direction="BtoA"),
        model=ModelConfig(ngf=ngf, ndf=ndf),
        train=TrainConfig(precision=precision, steps=steps),
    )


def _compute_dtype(precision: str) -> str:
    return {"float32": "float32", "mixed_float16": "float16"}.get(precision, "bfloat16")


def _summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


@dataclasses.dataclass
class Contestant:
    """One side of a comparison: `run(round)` does one round and returns its seconds per step."""

    name: str
    precision: str
    run: Callable[[int], float]
    flops: float | None = None
    times: list[float] = dataclasses.field(default_factory=list)  # seconds per step, one per round
    own: list[float] = dataclasses.field(default_factory=list)  # the loop table: the trainer's own figure


def _race(pairs: list[tuple[Contestant, Contestant]], rounds: int, what: str) -> None:
    """Runs `rounds` rounds; in each, every (tutorial, ours) pair back to back, who goes first alternating.

    Back to back, drift in the machine's speed (other jobs on a shared host) hits both
    sides of a pair alike, and the ratio taken within the round cancels most of it.
    """
    for r in range(rounds):
        print(f"  {what}: round {r + 1} of {rounds}", flush=True)
        for pair in pairs:
            for c in pair if r % 2 == 0 else pair[::-1]:
                c.times.append(c.run(r))


def _rows(pairs: list[tuple[Contestant, Contestant]], batch: int, ceilings: dict | None = None) -> list[dict]:
    """A row per contestant: ms/step and per-round ratios, each as median [min, max] over the rounds."""
    baseline = pairs[0][0]  # the tutorial in float32: the tutorial as published

    def ratios(base: Contestant, c: Contestant) -> dict:
        return _summary([b / t for b, t in zip(base.times, c.times, strict=True)])

    rows = []
    for tutorial, ours in pairs:
        for c in (tutorial, ours):
            ms = _summary([t * 1000 for t in c.times])
            row = {
                "contestant": c.name,
                "side": "tutorial" if c is tutorial else "pix2pix_tf",
                "precision": c.precision,
                "ms_per_step": ms,
                "rounds_ms": [t * 1000 for t in c.times],
                "images_per_s": batch / (ms["median"] / 1000),
                "vs_tutorial_float32": ratios(baseline, c),
                "vs_tutorial_same_precision": ratios(tutorial, c) if c is ours else None,
            }
            if c.flops is not None:
                floor_ms = c.flops / ceilings[_compute_dtype(c.precision)] * 1000
                row |= {
                    "gflop_per_step": c.flops / 1e9,
                    "floor_ms": floor_ms,
                    "fraction_of_floor": floor_ms / ms["median"],
                }
            if c.own:
                row["trainer_own_ms_per_step"] = _summary([t * 1000 for t in c.own])
            rows.append(row)
    return rows


def _default_vs_default(rows: list[dict], auto: str) -> dict | None:
    """This package at `auto` against the tutorial as published (float32), per round; None if `auto` was not run."""
    ours = next((r for r in rows if r["side"] == "pix2pix_tf" and r["precision"] == auto), None)
    if ours is None:
        return None
    return {"pix2pix_tf": ours["contestant"], "tutorial": rows[0]["contestant"], "ratio": ours["vs_tutorial_float32"]}


def _ours(size, batch, ngf, ndf, precision, x, y, steps) -> Contestant:
    model = Pix2Pix(_config(size, batch, ngf, ndf, precision), Schedule(100_000, 50_000, 1000, batch))
    iterator = iter(tf.data.Dataset.from_tensors((x, y)).repeat())
    # The trainer's own call sizing (its default): each call sized from the one before.
    pacer = Pacer()
    for _ in range(3):  # trace, warm up, then size the calls from a one-step call
        pacer.call(model, iterator, stop=pacer.step + 1)
    per_call = pacer.per_call  # the label's; the rounds' calls are sized as they go, as in the trainer

    def run(_round):
        start, stop = time.perf_counter(), pacer.step + steps
        while pacer.step < stop:
            losses, _ = pacer.call(model, iterator, stop=stop)
        float(losses["g_total"])
        return (time.perf_counter() - start) / steps

    label = f"pix2pix_tf, {model.config.train.precision}" + (f", {per_call} steps per call" if per_call > 1 else "")
    flops = _flops(model.train_step.get_concrete_function(x, y))
    return Contestant(label, model.config.train.precision, run, flops)


def _tutorial(size, batch, ngf, ndf, precision, x, y, steps) -> Contestant:
    tutorial = Tutorial(size, ngf, ndf, precision)
    for _ in range(2):
        float(tutorial.step(x, y))

    def run(_round):
        start = time.perf_counter()
        for _ in range(steps):
            loss = tutorial.step(x, y)
        float(loss)
        return (time.perf_counter() - start) / steps

    return Contestant(
        f"tutorial recipe, {precision}", precision, run, _flops(tutorial.step.get_concrete_function(x, y))
    )


def step_table(spec: dict, precisions: list[str], auto: str, rounds: int, steps: int, ceilings: dict) -> dict:
    """The train step alone, each contestant on the same data tensor, no summaries on either side."""
    size, batch = spec["image_size"], spec["batch_size"]
    x = tf.random.uniform((batch, size, size, 3), -1, 1, seed=1)
    y = tf.random.uniform((batch, size, size, 3), -1, 1, seed=2)
    args = (size, batch, spec["ngf"], spec["ndf"])
    pairs = [(_tutorial(*args, p, x, y, steps), _ours(*args, p, x, y, steps)) for p in precisions]
    _race(pairs, rounds, f"train step, {size} px")
    rows = _rows(pairs, batch, ceilings)
    return {"steps_per_round": steps, "rows": rows, "default_vs_default": _default_vs_default(rows, auto)}


# Steps before a loop's timed span: tracing, and for the trainer the sizing of its calls.
LOOP_WARMUP = 20


def _seconds_per_step(logdir: Path, first: int, last: int) -> float:
    """From a run's TensorBoard events: the wall time from step `first`'s to step `last`'s, per step.

    A step's time is that of its first event, i.e. when its logging began; so the span
    holds everything the loop did after that up to step `last`'s logging.
    """
    times = {}
    for path in logdir.rglob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            if event.summary.value:
                times[event.step] = min(event.wall_time, times.get(event.step, event.wall_time))
    return (times[last] - times[first]) / (last - first)


def _tutorial_loop(data: Path, spec: dict, precision: str, steps: int, work: Path) -> Contestant:
    """The tutorial's pipeline and Python loop, at the trainer's default cadences instead of its own.

    The tutorial logs every step, shows images every 1000 steps and checkpoints every 5000.
    """
    size, batch, total, t = spec["image_size"], spec["batch_size"], LOOP_WARMUP + steps, TrainConfig()

    def run(r):
        folder = WorkDir(work / f"tutorial_{precision}_{r}")  # laid out as the trainer's
        tutorial = Tutorial(size, spec["ngf"], spec["ndf"], precision, str(folder.train_logs), t.log_every)
        manager = tf.train.CheckpointManager(tutorial.checkpoint, str(folder.checkpoints), t.keep_checkpoints)
        examples = _tutorial_examples(data, size, 4)  # the trainer's sample grid has 4 rows too
        stream = iter(_tutorial_dataset(data, size, batch))
        for step in range(1, total + 1):  # numbered from 1, as the trainer counts
            inp, tar = next(stream)
            tutorial.step(inp, tar, tf.constant(step, tf.int64))
            if step % t.sample_every == 0:
                tutorial.save_sample(examples, folder, step)
            if step % t.checkpoint_every == 0:
                manager.save(checkpoint_number=step)
        tutorial.writer.close()
        return _seconds_per_step(folder.logs, LOOP_WARMUP, total)

    return Contestant(f"tutorial loop, {precision}", precision, run)


def _ours_loop(data: Path, spec: dict, precision: str, steps: int, work: Path) -> Contestant:
    """`pix2pix_tf.train.train` with every setting but the sizes and the precision at its default."""
    total = LOOP_WARMUP + steps
    config = _config(spec["image_size"], spec["batch_size"], spec["ngf"], spec["ndf"], precision, steps=total)
    own = []  # the trainer's own figure, which leaves its writes (logs, samples, checkpoints) out

    def run(r):
        folder = work / f"ours_{precision}_{r}"
        with contextlib.redirect_stdout(io.StringIO()):
            own.append(train(config, data, folder).seconds_per_step)
        return _seconds_per_step(WorkDir(folder).logs, LOOP_WARMUP, total)

    return Contestant(f"pix2pix_tf train(), {precision}", precision, run, own=own)


def loop_table(data: Path, spec: dict, precisions: list[str], auto: str, rounds: int, steps: int, work: Path) -> dict:
    """Whole loops on the same files, with the same settings on both sides (the trainer's defaults)."""
    t = TrainConfig()
    if steps % t.log_every or LOOP_WARMUP % t.log_every:
        raise ValueError(f"loop steps and warm-up must be multiples of log_every ({t.log_every})")
    pairs = [(_tutorial_loop(data, spec, p, steps, work), _ours_loop(data, spec, p, steps, work)) for p in precisions]
    _race(pairs, rounds, "whole loops")
    rows = _rows(pairs, spec["batch_size"])
    return {
        "warmup_steps": LOOP_WARMUP,
        "steps_per_round": steps,
        "settings": {k: getattr(t, k) for k in ("log_every", "sample_every", "checkpoint_every", "keep_checkpoints")},
        "rows": rows,
        "default_vs_default": _default_vs_default(rows, auto),
    }


def pipeline_ms(data: Path, spec: dict, batches: int) -> float:
    """ms per batch of this package's input pipeline alone (decode, jitter, batch), after warm-up."""
    cfg = _config(spec["image_size"], spec["batch_size"], spec["ngf"], spec["ndf"], "float32").data
    stream = iter(train_dataset(find_pairs(data, "train", cfg), cfg, seed=0))
    for _ in range(5):
        next(stream)
    start = time.perf_counter()
    for _ in range(batches):
        next(stream)
    return (time.perf_counter() - start) / batches * 1000


def peak_rss_gb(data: Path, work: Path) -> float:
    """Peak RSS of `pix2pix-tf train` at 256 px batch 1 (paper sizes), a few steps, in its own process.

    Read from the child's own VmHWM: getrusage's figure for a child also counts the
    copy of this (large) process it was forked from before it exec'd.
    """
    code = (
        "import sys; from pix2pix_tf.cli import main; code = main(sys.argv[1:]); "
        "print('VmHWM', [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]); "
        "sys.exit(code)"
    )
    cmd = [sys.executable, "-c", code, "train", "--data", str(data), "--workdir", str(work)]
    cmd += ["--image-size", "256", "--steps", "4", "--sample-every", "4", "--checkpoint-every", "4"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    kib = int(next(line for line in out.splitlines() if line.startswith("VmHWM")).split()[1])
    return kib / 1024**2


def inference_rows(workdir: Path, data: Path, out: Path, ceiling: float, runs: int) -> list[dict]:
    """Latency of one 256 px image through each form of the generator, with the float32 floor."""
    from pix2pix_tf.export import export

    with contextlib.redirect_stdout(io.StringIO()):
        report = export(workdir, out, data_dir=data, latency_runs=runs)
    generator, config, _ = load_generator(workdir)
    x = tf.random.uniform((1, 256, 256, 3), -1, 1)
    floor_ms = _flops(tf.function(lambda x: generator(x, training=False)).get_concrete_function(x)) / ceiling * 1000
    rows = []

    def timed(name, fn):
        fn()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1000)
        rows.append({"form": name, "ms": statistics.median(times), "floor_ms": floor_ms})

    keras_call = tf.function(lambda x: generator(x, training=False))
    timed("Keras (tf.function)", lambda: keras_call(x).numpy())
    saved = load(out)
    timed("SavedModel (serving_default)", lambda: saved.run(x.numpy()))
    for v in report["tflite"]:
        rows.append(
            {
                "form": f"TFLite {v['variant']} ({report['tflite_threads']} threads)",
                "ms": v["latency_ms"],
                "floor_ms": floor_ms,
                "psnr_vs_keras_db": v["psnr_db"],
                "mb": v["bytes"] / 1e6,
            }
        )
    return rows


def quality(data: Path, auto: str, steps: int, work: Path) -> dict:
    """Test L1 / PSNR after `steps` steps from the same seed and data, float32 and the auto precision."""
    scores = {}
    for precision in dict.fromkeys(("float32", auto)):  # once if auto is float32
        config = _config(64, 4, 16, 32, precision, steps=steps)
        config = config.replace(train={"log_every": 10**6, "sample_every": 10**6, "checkpoint_every": 10**6})
        with contextlib.redirect_stdout(io.StringIO()):
            train(config, data, work / precision)
        generator, config, _ = load_generator(work / precision)
        scores[precision] = evaluate(generator, config, data, "test")["mean"]
    if auto == "float32":
        return {"steps": steps, "scores": scores, "psnr_delta_db": None, "within_0_5_db": None}
    delta = scores[auto]["psnr"] - scores["float32"]["psnr"]
    return {"steps": steps, "scores": scores, "psnr_delta_db": delta, "within_0_5_db": abs(delta) <= 0.5}


def op_profile(spec: dict, precision: str, steps: int) -> dict:
    """Where this package's step spends its time: TensorFlow's profiler trace, summed by op type and by op.

    Times are summed over the threads that ran ops, so they add up to more than the
    wall time when ops run in parallel; the shares are of that sum.
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    size, batch = spec["image_size"], spec["batch_size"]
    model = Pix2Pix(_config(size, batch, spec["ngf"], spec["ndf"], precision), Schedule(100_000, 50_000, 1000, batch))
    x = tf.random.uniform((batch, size, size, 3), -1, 1, seed=1)
    iterator = iter(tf.data.Dataset.from_tensors((x, x)).repeat())
    one = tf.constant(1, tf.int64)
    for _ in range(2):
        float(model.train_steps(iterator, one)[0]["g_total"])
    logdir = tempfile.mkdtemp(prefix="profile_")
    tf.profiler.experimental.start(logdir)
    for _ in range(steps):
        float(model.train_steps(iterator, one)[0]["g_total"])
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    by_type, by_op = {}, {}
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or name.startswith("ExecutorState"):  # executor bookkeeping, not an op
                    continue
                op, kind = name.rsplit(":", 1)
                kind = kind.removeprefix("_MklNative").removeprefix("_Mkl")
                ms = event.duration_ps / 1e9 / steps
                by_type[kind] = by_type.get(kind, 0.0) + ms
                by_op[op] = by_op.get(op, 0.0) + ms
    total = sum(by_type.values())

    def top(d, n):
        return [{"name": k, "ms": v, "share": v / total} for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:n]]

    return {
        "precision": model.config.train.precision,
        "op_ms_per_step": total,
        "types": top(by_type, 10),
        "ops": top(by_op, 10),
    }


def _machine() -> dict:
    precision, why = resolve("auto")
    return {
        "cpu": cpu_model(),
        "cores": available_cores(),
        "tensorflow": tf.__version__,
        "native_bf16_flags": sorted(cpu_flags() & set(NATIVE_BF16_CPU_FLAGS)),
        "auto": precision,
        "why": why,
    }


def _ms(s: dict) -> str:
    return f"{s['median']:.1f} [{s['min']:.1f}, {s['max']:.1f}]"


def _times(s: dict | None) -> str:
    return f"**{s['median']:.2f}×** [{s['min']:.2f}, {s['max']:.2f}]" if s else "–"


def _default_line(table: dict, auto: str) -> str:
    d = table["default_vs_default"]
    if d is None:
        return f"Default against default: not measured (`auto` picks {auto} here, which was not run)."
    return (
        f"Default against default ({d['pix2pix_tf']}, which `auto` picks here, against {d['tutorial']}, "
        f"the tutorial as published): {_times(d['ratio'])}."
    )


def markdown(results: dict) -> str:
    """The measured sections of docs/performance.md."""
    m = results["machine"]
    native = ", ".join(m["native_bf16_flags"]) or "none"
    lines = [
        "# Performance: this package against the TF tutorial's recipe",
        "",
        f"Measured by `{results['command']}` on {m['cpu']}, {m['cores']} cores, "
        f"TensorFlow {m['tensorflow']}, on {results['date']}; it took {results['seconds'] / 60:.1f} min. "
        f"`--precision auto` chose **{m['auto']}** here ({m['why']}; native bfloat16 flags: {native}). "
        "Other machines differ: rerun the benchmark on yours. Raw numbers, every round included: "
        f"`{results['json']}`.",
        "",
        "Every table compares at equal precision (float32 against float32"
        + (", bfloat16 against bfloat16" if "mixed_bfloat16" in results["precisions"] else "")
        + ") and default against default (`auto` against the tutorial as published, in float32). "
        f"{results['rounds']} rounds; in each, the tutorial and this package at one precision run back to back "
        "in this process, which goes first alternating. Times and ratios are median [min, max] over the rounds, "
        "and a ratio (the tutorial's time over this package's) is taken within each round, so drift in the "
        "machine's speed between rounds largely cancels out of it.",
        "",
        f"Matmul throughput measured in the same run: {results['ceilings']['float32'] / 1e9:.0f} GFLOP/s float32, "
        f"{results['ceilings']['bfloat16'] / 1e9:.0f} GFLOP/s bfloat16. The floor of a step is its FLOPs (counted "
        "from its graph) at that throughput; convolutions seldom reach it.",
        "",
    ]
    for size, table in results["steps"].items():
        lines += [
            f"## Train step, {size}",
            "",
            f"Same data tensor for every contestant, no summaries on either side, {table['steps_per_round']} steps "
            "per round.",
            "",
            "| contestant | ms/step | images/s | vs tutorial, same precision | vs tutorial float32 | GFLOP/step "
            "| floor ms | share of floor |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in table["rows"]:
            lines.append(
                f"| {r['contestant']} | {_ms(r['ms_per_step'])} | {r['images_per_s']:.1f} | "
                f"{_times(r['vs_tutorial_same_precision'])} | {_times(r['vs_tutorial_float32'])} | "
                f"{r['gflop_per_step']:.1f} | {r['floor_ms']:.1f} | {r['fraction_of_floor']:.0%} |"
            )
        lines += ["", _default_line(table, m["auto"]), ""]
    loop = results["loop"]
    s = loop["settings"]
    lines += [
        f"## Whole training loop, {loop['size']}",
        "",
        "The same synthetic facades files; the tutorial's tf.data pipeline and Python loop (one call per step, "
        "summaries inside the step) against `pix2pix_tf.train.train`. Both with the same settings, the "
        f"trainer's defaults: loss scalars every {s['log_every']} steps, a sample grid (4 validation images) "
        f"every {s['sample_every']}, a checkpoint every {s['checkpoint_every']} (the last {s['keep_checkpoints']} "
        "kept). The trainer runs at its defaults unchanged; the tutorial's loop gets these in place of its own "
        "(every step, every 1000, every 5000). Both are timed by one ruler: the wall time between their own "
        f"TensorBoard events at steps {loop['warmup_steps']} and {loop['warmup_steps'] + loop['steps_per_round']}, "
        "so input, steps, summary writes and samples are on the clock for both. The last column is the "
        "trainer's own `seconds_per_step` (every step after its first call, its writes left out).",
        "",
        "| loop | ms/step | images/s | vs tutorial loop, same precision | vs tutorial loop float32 | "
        "trainer's own ms/step |",
        "|---|---|---|---|---|---|",
    ]
    for r in loop["rows"]:
        own = _ms(r["trainer_own_ms_per_step"]) if "trainer_own_ms_per_step" in r else "–"
        lines.append(
            f"| {r['contestant']} | {_ms(r['ms_per_step'])} | {r['images_per_s']:.1f} | "
            f"{_times(r['vs_tutorial_same_precision'])} | {_times(r['vs_tutorial_float32'])} | {own} |"
        )
    lines += ["", _default_line(loop, m["auto"])]
    p = results["pipeline"]
    q = results["quality"]
    lines += [
        "",
        "## Input pipeline, memory, quality",
        "",
        f"- This package's input pipeline alone (decode, jitter, batch; {loop['size']}): {p['ms_per_batch']:.2f} ms "
        f"per batch when drawn on its own, {p['share']:.1%} of the trainer's step time ({p['of']}); in training "
        "it runs ahead on tf.data threads, so this is the CPU time it takes, not time the step waits.",
        f"- Peak RSS of `pix2pix-tf train` at 256 px, batch 1, ngf 64 ({m['auto']}): {results['peak_rss_gb']:.2f} GB.",
        (
            f"- Quality: {q['steps']} steps at 64 px from the same seed and data; test PSNR float32 "
            f"{q['scores']['float32']['psnr']:.2f} dB, {m['auto']} {q['scores'][m['auto']]['psnr']:.2f} dB "
            f"(Δ {q['psnr_delta_db']:+.2f} dB: {'within' if q['within_0_5_db'] else 'OUTSIDE'} the 0.5 dB bound); "
            f"L1 {q['scores']['float32']['l1']:.4f} vs {q['scores'][m['auto']]['l1']:.4f}."
            if q["psnr_delta_db"] is not None
            else "- Quality: `auto` chose float32 here, so there is nothing to compare."
        ),
        "",
        "## Inference latency, one 256 px image (ngf 64)",
        "",
        "| form | median ms | float32 floor ms | PSNR vs Keras dB | MB |",
        "|---|---|---|---|---|",
    ]
    for r in results["inference"]:
        psnr_text = f"{r['psnr_vs_keras_db']:.1f}" if "psnr_vs_keras_db" in r else "–"
        mb = f"{r['mb']:.0f}" if "mb" in r else "–"
        lines.append(f"| {r['form']} | {r['ms']:.1f} | {r['floor_ms']:.1f} | {psnr_text} | {mb} |")
    prof = results["profile"]
    lines += [
        "",
        f"## Where the time goes: {list(SIZES)[0]}, {prof['precision']}",
        "",
        "TensorFlow's profiler trace of this package's step, op times summed over threads "
        f"({prof['op_ms_per_step']:.0f} ms of op time per step).",
        "",
        "| op type | ms/step | share |",
        "|---|---|---|",
        *[f"| {r['name']} | {r['ms']:.1f} | {r['share']:.0%} |" for r in prof["types"]],
        "",
        "| op | ms/step | share |",
        "|---|---|---|",
        *[f"| `{r['name']}` | {r['ms']:.1f} | {r['share']:.0%} |" for r in prof["ops"]],
    ]
    lines += ["", *results.get("notes", []), ""]
    return "\n".join(lines)


def _precisions(given: str | None, auto: str) -> list[str]:
    """float32 first (the tutorial as published is the baseline of every table), then the others."""
    precisions = ["float32"] + ([auto] if auto != "float32" else [])
    if given:
        precisions = ["float32"] + [p for p in dict.fromkeys(given.split(",")) if p != "float32"]
    unknown = set(precisions) - {"float32", "mixed_bfloat16", "mixed_float16"}
    if unknown:
        raise SystemExit(f"error: --precisions takes float32, mixed_bfloat16, mixed_float16; not {sorted(unknown)}")
    return precisions


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, help="rounds of every comparison (default 9; quick: 2)")
    parser.add_argument(
        "--precisions",
        help="comma-separated, compared at equal precision (default: float32 and the one `auto` picks here); "
        "a bfloat16 run on a CPU without native bfloat16 is emulated and says so",
    )
    parser.add_argument("--quick", action="store_true", help="tiny counts: checks the script, numbers mean little")
    parser.add_argument("--json", help="default: benchmarks/train_vs_tutorial.json (quick: a temporary file)")
    parser.add_argument("--markdown", help="also write the Markdown tables here (they always go to stdout)")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 9)
    scratch = Path(tempfile.mkdtemp(prefix="train_vs_tutorial_"))
    default_json = scratch / "out.json" if args.quick else ROOT / "benchmarks" / "train_vs_tutorial.json"
    json_path = Path(args.json or default_json).resolve()
    started = part_started = time.perf_counter()
    machine = _machine()
    auto = machine["auto"]
    precisions = _precisions(args.precisions, auto)
    notes = []
    if "mixed_bfloat16" in precisions and not machine["native_bf16_flags"]:
        notes.append(
            "Note: this CPU has no native bfloat16 (no AVX512_BF16 or AMX), so the bfloat16 rows are emulated "
            "bfloat16, which `auto` never picks."
        )
    ceilings = {d: matmul_ceiling(d) for d in dict.fromkeys(["float32", "bfloat16", *map(_compute_dtype, precisions)])}
    # About 5 s per contestant per round at either size.
    round_steps = {name: 2 if args.quick else (8 if spec["image_size"] >= 256 else 60) for name, spec in SIZES.items()}
    results = {
        "command": " ".join(["python benchmarks/train_vs_tutorial.py", *sys.argv[1:]]),
        "json": str(json_path.relative_to(ROOT)) if json_path.is_relative_to(ROOT) else str(json_path),
        "machine": machine,
        "date": time.strftime("%Y-%m-%d"),
        "precisions": precisions,
        "rounds": rounds,
        "ceilings": ceilings,
        "steps": {},
        "notes": notes,
        "part_seconds": {},  # how long each part took, for estimating the next run
    }

    def save(part: str):  # after every part, so that a late failure keeps what was measured
        nonlocal part_started
        now = time.perf_counter()
        results["part_seconds"][part] = now - part_started
        results["seconds"], part_started = now - started, now
        json_path.write_text(json.dumps(results, indent=2) + "\n")

    save("machine, matmul throughput")
    for name, spec in SIZES.items():
        print(f"train step, {name} ...", flush=True)
        results["steps"][name] = step_table(spec, precisions, auto, rounds, round_steps[name], ceilings)
        keras.backend.clear_session()
        save(f"train step, {name}")
    print("profile ...", flush=True)
    results["profile"] = op_profile(list(SIZES.values())[0], auto, 2 if args.quick else 5)
    save("profile")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with contextlib.redirect_stdout(io.StringIO()):
            synthesize("facades", tmp / "facades64", count=200, size=64, seed=0)
            synthesize("facades", tmp / "facades256", count=20, size=256, seed=0)
        save("synthetic data")
        small_name, small = list(SIZES.items())[1]
        loop_steps = 20 if args.quick else 200
        print("whole loops ...", flush=True)
        results["loop"] = {"size": small_name} | loop_table(
            tmp / "facades64", small, precisions, auto, rounds, loop_steps, tmp / "loops"
        )
        save("whole loops")
        ours = [r for r in results["loop"]["rows"] if r["side"] == "pix2pix_tf"]
        ours = next((r for r in ours if r["precision"] == auto), ours[0])
        batch_ms = pipeline_ms(tmp / "facades64", small, 20 if args.quick else 200)
        results["pipeline"] = {
            "ms_per_batch": batch_ms,
            "share": batch_ms / ours["ms_per_step"]["median"],
            "of": ours["contestant"],
        }
        save("input pipeline")
        print("peak RSS at 256 px ...", flush=True)
        results["peak_rss_gb"] = peak_rss_gb(tmp / "facades256", tmp / "run256")
        save("peak RSS")
        print("inference latency at 256 px ...", flush=True)
        results["inference"] = inference_rows(
            tmp / "run256", tmp / "facades256", tmp / "export256", ceilings["float32"], 3 if args.quick else 10
        )
        save("inference")
        print("quality check ...", flush=True)
        results["quality"] = quality(tmp / "facades64", auto, 30 if args.quick else 1500, tmp / "quality")
        save("quality")
    text = markdown(results)
    if args.markdown:
        Path(args.markdown).write_text(text)
    print(text)
    print(f"results: {json_path}")


if __name__ == "__main__":
    main()
