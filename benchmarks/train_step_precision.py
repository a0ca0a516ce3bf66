"""Train-step time by precision, float32 baseline side by side, reported as a ratio.

    python benchmarks/train_step_precision.py --image-size 256 --steps 20

Each precision builds the same models (paper defaults unless --ngf/--ndf are given),
runs warm-up steps (tracing), then times `--steps` steps on a fixed batch and reports
the median. Ratios > 1 mean faster than float32. mixed_bfloat16 pays off only on CPUs
with AVX512-BF16/AMX (or TPUs); mixed_float16 is for GPUs.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from pix2pix_tf.config import Config, DataConfig, ModelConfig, TrainConfig  # noqa: E402
from pix2pix_tf.train import Pix2Pix, Schedule  # noqa: E402


def median_step_ms(precision: str, args) -> float:
    config = Config(
        data=DataConfig(image_size=args.image_size, batch_size=args.batch_size),
        model=ModelConfig(ngf=args.ngf, ndf=args.ndf),
        train=TrainConfig(precision=precision),
    )
    model = Pix2Pix(config, Schedule(10_000, 5_000, 1000, args.batch_size))
    shape = (args.batch_size, args.image_size, args.image_size, 3)
    source, target = tf.random.uniform(shape, -1, 1, seed=0), tf.random.uniform(shape, -1, 1, seed=1)
    for _ in range(args.warmup):
        float(model.train_step(source, target)["g_total"])
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        float(model.train_step(source, target)["g_total"])  # float() waits for the step to finish
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    args = parser.parse_args()
    precisions = args.precisions.split(",")
    if precisions[0] != "float32":
        precisions.insert(0, "float32")
    results = {p: median_step_ms(p, args) for p in precisions}
    print(
        f"train step, {args.image_size} px, batch {args.batch_size}, ngf {args.ngf}, ndf {args.ndf}, "
        f"median of {args.steps} steps:"
    )
    for precision, ms in results.items():
        print(f"  {precision:15} {ms:8.1f} ms   {results['float32'] / ms:.2f}x vs float32")


if __name__ == "__main__":
    main()
