"""This package's trainer against the TensorFlow pix2pix tutorial's recipe, side by side in one process.

    python benchmarks/train_vs_tutorial.py            # a few minutes; writes docs/performance.md
    python benchmarks/train_vs_tutorial.py --quick    # a smoke test of the script

The tutorial recipe is written here from its published description (tensorflow.org
"pix2pix: Image-to-image translation with a conditional GAN"): Conv + BatchNorm +
LeakyReLU (Keras' default slope 0.3) down-sampling, BatchNorm on the 1x1 bottleneck,
ConvTranspose + BatchNorm (+ Dropout 0.5) + ReLU up-sampling, the 70x70 PatchGAN,
binary cross-entropy, D's loss not halved, Adam(2e-4, 0.5), two tapes in one
tf.function, one call per step with its summaries written every step.

Measured, per configuration (256 px batch 1 ngf 64, the paper's; 64 px batch 4 ngf 16,
the demo's, notebooks' and experiments'):
  * train step: each contestant on the same data tensor, rounds interleaved, timed to
    completion; the tutorial in float32 and in the precision `auto` picks, this package
    in both, with its default steps per call;
  * the floor: step FLOPs counted from each graph over the matmul throughput measured
    in this run;
  * at the small size, whole loops on the same files: the tutorial's input pipeline and
    loop against `pix2pix_tf.train.train` at its defaults;
  * the input pipeline's share, peak RSS of `pix2pix-tf train` at 256 px batch 1,
    inference latency at 256 px (Keras, SavedModel, each TFLite variant), and a quality
    check: the auto precision's test PSNR against float32 after the same steps.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from pix2pix_tf.config import Config, DataConfig, ModelConfig, TrainConfig  # noqa: E402
from pix2pix_tf.data.files import find_pairs  # noqa: E402
from pix2pix_tf.data.pipeline import train_dataset  # noqa: E402
from pix2pix_tf.data.synthetic import synthesize  # noqa: E402
from pix2pix_tf.evaluate import evaluate  # noqa: E402
from pix2pix_tf.inference import available_cores, load, load_generator  # noqa: E402
from pix2pix_tf.precision import cpu_model, resolve  # noqa: E402
from pix2pix_tf.train import Pix2Pix, Schedule, train  # noqa: E402
from pix2pix_tf.train.loop import MAX_STEPS_PER_CALL, TARGET_CALL_SECONDS  # noqa: E402

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
    """The tutorial's train step (and, for the loop, its summaries every step)."""

    def __init__(self, size, ngf, ndf, precision, logdir=None):
        dtype = None if precision == "float32" else precision
        self.generator, self.discriminator = _tutorial_models(size, ngf, ndf, dtype)
        self.g_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.d_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.bce = keras.losses.BinaryCrossentropy(from_logits=True)
        self.writer = tf.summary.create_file_writer(logdir) if logdir else None
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
            with self.writer.as_default():
                for name, value in (("gen_total_loss", g_loss), ("gen_gan_loss", gan), ("gen_l1_loss", l1)):
                    tf.summary.scalar(name, value, step=step // 1000)
                tf.summary.scalar("disc_loss", d_loss, step=step // 1000)
        return g_loss


def _tutorial_dataset(data_dir: Path, size: int, batch: int) -> tf.data.Dataset:
    """The tutorial's pipeline: decode the A|B JPEG, resize to 286, random crop, mirror, [-1, 1]."""
    load_size = size * 286 // 256

    def load_pair(path):
        image = tf.cast(tf.io.decode_jpeg(tf.io.read_file(path)), tf.float32)
        w = tf.shape(image)[1] // 2
        real, inp = image[:, :w, :], image[:, w:, :]  # facades: photo | labels, labels -> photo
        both = tf.stack([inp, real])
        both = tf.image.resize(both, [load_size, load_size], method=tf.image.ResizeMethod.NEAREST_NEIGHBOR)
        both = tf.image.random_crop(both, [2, size, size, 3])
        both = tf.cond(tf.random.uniform(()) > 0.5, lambda: tf.image.flip_left_right(both), lambda: both)
        both = both / 127.5 - 1
        return both[0], both[1]

    files = sorted(str(p) for p in (data_dir / "train").glob("*.jpg"))
    return (
        tf.data.Dataset.from_tensor_slices(files)
        .shuffle(len(files))
        .map(load_pair, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch)
        .repeat()
    )


# ----------------------------------------------------------------- measuring


def _flops(fn, *args) -> float:
    graph = tf.function(fn).get_concrete_function(*args).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return float(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)


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
    return Config(
        data=DataConfig(image_size=size, batch_size=batch, direction="BtoA"),
        model=ModelConfig(ngf=ngf, ndf=ndf),
        train=TrainConfig(precision=precision, steps=steps),
    )


class Contestant:
    def __init__(self, name, run, flops, precision):
        self.name, self.run, self.flops, self.precision, self.times = name, run, flops, precision, []


def _ours(size, batch, ngf, ndf, precision, x, y) -> Contestant:
    model = Pix2Pix(_config(size, batch, ngf, ndf, precision), Schedule(100_000, 50_000, 1000, batch))
    iterator = iter(tf.data.Dataset.from_tensors((x, y)).repeat())
    one = tf.constant(1, tf.int64)
    for _ in range(2):
        float(model.train_steps(iterator, one)[0]["g_total"])  # trace, warm up
    start = time.perf_counter()
    float(model.train_steps(iterator, one)[0]["g_total"])
    # What the loop does by default: calls sized to about TARGET_CALL_SECONDS.
    per_call = min(MAX_STEPS_PER_CALL, max(1, round(TARGET_CALL_SECONDS / (time.perf_counter() - start))))

    def run(steps):
        done = 0
        while done < steps:
            n = min(per_call, steps - done)
            losses, _ = model.train_steps(iterator, tf.constant(n, tf.int64))
            done += n
        float(losses["g_total"])

    label = f"pix2pix_tf, {model.config.train.precision}" + (f", {per_call} steps per call" if per_call > 1 else "")
    return Contestant(label, run, _flops(model._train_step, x, y), model.config.train.precision)


def _tutorial(size, batch, ngf, ndf, precision, x, y) -> Contestant:
    tutorial = Tutorial(size, ngf, ndf, precision)
    for _ in range(2):
        float(tutorial.step(x, y))

    def run(steps):
        for _ in range(steps):
            loss = tutorial.step(x, y)
        float(loss)

    return Contestant(f"tutorial recipe, {precision}", run, _flops(tutorial._step, x, y), precision)


def step_table(spec: dict, auto: str, rounds: int, steps: int, ceilings: dict) -> list[dict]:
    size, batch = spec["image_size"], spec["batch_size"]
    x = tf.random.uniform((batch, size, size, 3), -1, 1, seed=1)
    y = tf.random.uniform((batch, size, size, 3), -1, 1, seed=2)
    precisions = ["float32"] + ([auto] if auto != "float32" else [])
    contestants = [
        make(size, batch, spec["ngf"], spec["ndf"], p, x, y) for make in (_tutorial, _ours) for p in precisions
    ]
    for _ in range(rounds):  # interleaved, so drift in the machine's speed hits every contestant alike
        for c in contestants:
            start = time.perf_counter()
            c.run(steps)
            c.times.append((time.perf_counter() - start) / steps)
    base = statistics.median(contestants[0].times)
    rows = []
    for c in contestants:
        ms = statistics.median(c.times) * 1000
        compute = {"float32": "float32", "mixed_float16": "float16"}.get(c.precision, "bfloat16")
        floor_ms = c.flops / ceilings[compute] * 1000
        rows.append(
            {
                "contestant": c.name,
                "ms_per_step": ms,
                "spread_ms": (max(c.times) - min(c.times)) * 1000,
                "images_per_s": batch / (ms / 1000),
                "vs_tutorial_fp32": base * 1000 / ms,
                "gflop_per_step": c.flops / 1e9,
                "floor_ms": floor_ms,
                "fraction_of_floor": floor_ms / ms,
            }
        )
    return rows


def loop_table(data: Path, spec: dict, auto: str, rounds: int, steps: int, work: Path) -> list[dict]:
    """Whole loops on the same files: the tutorial's pipeline and loop vs `train()` at its defaults."""
    size, batch = spec["image_size"], spec["batch_size"]
    results = {"tutorial loop, float32": [], f"pix2pix_tf train(), {auto}": []}
    for r in range(rounds):
        tutorial = Tutorial(size, spec["ngf"], spec["ndf"], "float32", logdir=str(work / f"tutorial_logs{r}"))
        stream = iter(_tutorial_dataset(data, size, batch))
        for step in range(steps + 5):
            if step == 5:  # after tracing and warm-up
                start = time.perf_counter()
            inp, tar = next(stream)
            loss = tutorial.step(inp, tar, tf.constant(step, tf.int64))
        float(loss)
        results["tutorial loop, float32"].append((time.perf_counter() - start) / steps)
        config = _config(size, batch, spec["ngf"], spec["ndf"], "auto", steps=steps + 5)
        config = config.replace(train={"log_every": 100, "sample_every": 10**6, "checkpoint_every": 10**6})
        with contextlib.redirect_stdout(io.StringIO()):
            result = train(config, data, work / f"ours{r}")
        results[f"pix2pix_tf train(), {auto}"].append(result.seconds_per_step)
    base = statistics.median(results["tutorial loop, float32"])
    return [
        {
            "contestant": name,
            "ms_per_step": statistics.median(t) * 1000,
            "images_per_s": batch / statistics.median(t),
            "vs_tutorial_fp32": base / statistics.median(t),
        }
        for name, t in results.items()
    ]


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
    floor_ms = _flops(lambda x: generator(x, training=False), x) / ceiling * 1000
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
    return {"cpu": cpu_model(), "cores": available_cores(), "tensorflow": tf.__version__, "auto": precision, "why": why}


def write_markdown(results: dict, path: Path) -> None:
    m = results["machine"]
    lines = [
        "# Performance: this package against the TF tutorial's recipe",
        "",
        f"Measured by `python benchmarks/train_vs_tutorial.py` on {m['cpu']}, {m['cores']} cores, "
        f"TensorFlow {m['tensorflow']}, on {results['date']}; it took {results['seconds'] / 60:.1f} min. "
        f"`--precision auto` chose **{m['auto']}** here ({m['why']}). Other machines differ: "
        "rerun the benchmark on yours. Raw numbers: `benchmarks/train_vs_tutorial.json`.",
        "",
        f"Matmul throughput measured in the same run: {results['ceilings']['float32'] / 1e9:.0f} GFLOP/s float32, "
        f"{results['ceilings']['bfloat16'] / 1e9:.0f} GFLOP/s bfloat16. The floor of a step is its FLOPs (counted "
        "from its graph) at that throughput; convolutions seldom reach it.",
        "",
    ]
    for size, rows in results["steps"].items():
        lines += [
            f"## Train step, {size}",
            "",
            "Same data tensor for every contestant, rounds interleaved, median of "
            f"{results['rounds']} rounds of {results['round_steps'][size]} steps.",
            "",
            "| contestant | ms/step | images/s | vs tutorial float32 | GFLOP/step | floor ms | share of floor |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['contestant']} | {r['ms_per_step']:.1f} | {r['images_per_s']:.1f} | "
                f"**{r['vs_tutorial_fp32']:.2f}×** | {r['gflop_per_step']:.1f} | {r['floor_ms']:.1f} | "
                f"{r['fraction_of_floor']:.0%} |"
            )
        lines.append("")
    loop = results["loop"]
    lines += [
        f"## Whole training loop, {loop['size']}",
        "",
        "The same synthetic facades files; the tutorial's tf.data pipeline and Python loop (summaries every "
        "step) against `pix2pix_tf.train.train` at its defaults (samples, checkpoints and logs off the clock "
        "only where the trainer itself excludes them), median of "
        f"{results['rounds']} rounds of {loop['steps']} steps.",
        "",
        "| loop | ms/step | images/s | vs tutorial loop |",
        "|---|---|---|---|",
    ]
    for r in loop["rows"]:
        lines.append(
            f"| {r['contestant']} | {r['ms_per_step']:.1f} | {r['images_per_s']:.1f} | "
            f"**{r['vs_tutorial_fp32']:.2f}×** |"
        )
    p = results["pipeline"]
    q = results["quality"]
    lines += [
        "",
        "## Input pipeline, memory, quality",
        "",
        f"- This package's input pipeline alone (decode, jitter, batch; {loop['size']}): {p['ms_per_batch']:.2f} ms "
        f"per batch when drawn on its own, {p['share']:.1%} of the trainer's step time; in training it runs "
        "ahead on tf.data threads, so this is the CPU time it takes, not time the step waits.",
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
    path.write_text("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny counts: checks the script, numbers mean little")
    parser.add_argument("--json", help="default: benchmarks/train_vs_tutorial.json (quick: a temporary file)")
    parser.add_argument("--markdown", help="default: docs/performance.md (quick: a temporary file)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="train_vs_tutorial_"))
    args.json = args.json or str(scratch / "out.json" if args.quick else ROOT / "benchmarks" / "train_vs_tutorial.json")
    args.markdown = args.markdown or str(scratch / "out.md" if args.quick else ROOT / "docs" / "performance.md")
    started = time.perf_counter()
    machine = _machine()
    auto = machine["auto"]
    ceilings = {"float32": matmul_ceiling("float32"), "bfloat16": matmul_ceiling("bfloat16")}
    if auto == "mixed_float16":
        ceilings["float16"] = matmul_ceiling("float16")
    # About 5 s per contestant per round at either size.
    round_steps = {name: 2 if args.quick else (8 if spec["image_size"] >= 256 else 60) for name, spec in SIZES.items()}
    results = {
        "machine": machine,
        "date": time.strftime("%Y-%m-%d"),
        "rounds": args.rounds,
        "round_steps": round_steps,
        "ceilings": ceilings,
        "steps": {},
    }
    for name, spec in SIZES.items():
        print(f"train step, {name} ...", flush=True)
        results["steps"][name] = step_table(spec, auto, args.rounds, round_steps[name], ceilings)
        keras.backend.clear_session()
    print("profile ...", flush=True)
    results["profile"] = op_profile(list(SIZES.values())[0], auto, 2 if args.quick else 5)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with contextlib.redirect_stdout(io.StringIO()):
            synthesize("facades", tmp / "facades64", count=200, size=64, seed=0)
            synthesize("facades", tmp / "facades256", count=20, size=256, seed=0)
        small_name, small = list(SIZES.items())[1]
        loop_steps = 20 if args.quick else 200
        print("whole loops ...", flush=True)
        loop_rows = loop_table(tmp / "facades64", small, auto, args.rounds, loop_steps, tmp / "loops")
        results["loop"] = {"size": small_name, "steps": loop_steps, "rows": loop_rows}
        ours_ms = loop_rows[1]["ms_per_step"]
        batch_ms = pipeline_ms(tmp / "facades64", small, 20 if args.quick else 200)
        results["pipeline"] = {"ms_per_batch": batch_ms, "share": batch_ms / ours_ms}
        print("peak RSS at 256 px ...", flush=True)
        results["peak_rss_gb"] = peak_rss_gb(tmp / "facades256", tmp / "run256")
        print("inference latency at 256 px ...", flush=True)
        results["inference"] = inference_rows(
            tmp / "run256", tmp / "facades256", tmp / "export256", ceilings["float32"], 3 if args.quick else 10
        )
        print("quality check ...", flush=True)
        results["quality"] = quality(tmp / "facades64", auto, 30 if args.quick else 1500, tmp / "quality")
    results["seconds"] = time.perf_counter() - started
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, Path(args.markdown))
    print(Path(args.markdown).read_text())


if __name__ == "__main__":
    main()
