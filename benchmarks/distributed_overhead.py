"""What a second worker costs: one training process against two worker processes on loopback.

    python benchmarks/distributed_overhead.py           # ~4 minutes; writes benchmarks/distributed_overhead.json
    python benchmarks/distributed_overhead.py --quick   # a smoke test of the script

Both sides train the same global batch through `pix2pix_tf.train.train`: one
process with the default strategy, and two `multi_worker` processes on 127.0.0.1
(MultiWorkerMirroredStrategy, gRPC ring all-reduce on CPU), each with half the
batch. On one 2-core machine the two workers share the cores (each gets half:
its op thread pools are capped), so the second worker adds no compute: the
difference is the price of the distribution itself. Also measured alone: what
one worker computes (half the batch on half the cores, default strategy), and
the all-reduce of a float32 tensor the size of G's and D's gradients between
the two processes; the step of two workers less the first is the cost of
synchronising (all-reduce, the per-call agreement, waiting for the slower one).

Speeds are the trainer's own `seconds_per_step` (the first, tracing call and file
writing left out), of the chief; images/s is the global batch over it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "64 px, batch 4, ngf 16, ndf 32": dict(image_size=64, batch_size=4, ngf=16, ndf=32, steps=400),
    "256 px, batch 2, ngf 64, ndf 64": dict(image_size=256, batch_size=2, ngf=64, ndf=64, steps=30),
}
QUICK = {"32 px, batch 2, ngf 8, ndf 8": dict(image_size=32, batch_size=2, ngf=8, ndf=8, steps=20)}
ALLREDUCE_REPEATS = 10


def _hosts(n: int) -> list[str]:
    """`n` distinct free 127.0.0.1 ports as TF_CONFIG addresses."""
    from pix2pix_tf.serve import free_port

    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return [f"127.0.0.1:{port}" for port in sorted(ports)]


def _train_worker(spec: dict) -> dict:
    """One process's share of a run: trains and reports its speed."""
    import numpy as np
    import tensorflow as tf

    from pix2pix_tf.artifacts import WorkDir
    from pix2pix_tf.config import Config
    from pix2pix_tf.train import distribute, train

    strategy, _ = distribute.make_strategy(spec["strategy"])
    config = Config().replace(
        data={"image_size": spec["image_size"], "batch_size": spec["batch_size"]},
        model={"ngf": spec["ngf"], "ndf": spec["ndf"]},
        train={
            "steps": spec["steps"],
            "strategy": spec["strategy"],
            "checkpoint_every": 10**6,
            "sample_every": 10**6,
            "log_every": 10**6,
        },
    )
    result = train(config, spec["data"], spec["workdir"], strategy=strategy)
    precision = params = None
    if distribute.role_of(strategy).is_chief:  # only the chief's run.json is complete
        from pix2pix_tf.models import build_models

        precision = WorkDir(spec["workdir"]).read_run_record()["precision"]["chosen"]

        g, d = build_models(config.replace(train={"precision": "float32"}), seed=0)
        # What is all-reduced: the trainable weights' gradients (not BN's moving statistics).
        params = {
            name: sum(int(np.prod(w.shape)) for w in m.trainable_weights)
            for name, m in (("generator", g), ("discriminator", d))
        }
    return {
        "seconds_per_step": result.seconds_per_step,
        "precision": precision,
        "parameters": params,
        "tf": tf.__version__,
    }


def _allreduce_worker(spec: dict) -> dict:
    """Times the all-reduce of `floats` float32 values between the workers in TF_CONFIG."""
    import tensorflow as tf

    from pix2pix_tf.train import distribute

    strategy, _ = distribute.make_strategy("multi_worker")
    with strategy.scope():
        values = tf.Variable(tf.ones([spec["floats"]], tf.float32))

    @tf.function
    def all_reduce():
        summed = strategy.run(
            lambda: tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, values * 1.0)
        )
        return strategy.experimental_local_results(summed)[0][0]

    float(all_reduce())  # trace and warm up
    times = []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        float(all_reduce())
        times.append(time.perf_counter() - start)
    return {"seconds": sorted(times)[len(times) // 2]}


def _launch(mode: str, specs: list[dict], hosts: list[str] | None, threads: int | None = None) -> list[dict]:
    """Runs this script in `mode` once per spec (one per worker when `hosts` is given).

    `threads` caps TensorFlow's op thread pools of each process (its share of the cores).
    """
    processes = []
    for index, spec in enumerate(specs):
        env = dict(os.environ)
        if threads:
            env.update(TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS=str(threads))
        if hosts:
            env["TF_CONFIG"] = json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})
        processes.append(
            subprocess.Popen(
                [sys.executable, __file__, mode, json.dumps(spec)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    results = []
    for process in processes:
        out, err = process.communicate(timeout=1800)
        if process.returncode:
            raise SystemExit(f"a {mode} process failed:\n{err[-3000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/distributed_overhead.json"))
    args = parser.parse_args()

    from pix2pix_tf.data.synthetic import synthesize
    from pix2pix_tf.precision import cpu_model

    configs = QUICK if args.quick else CONFIGS
    report = {"cpu": cpu_model(), "cores": os.cpu_count(), "configs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "facades"
        synthesize("facades", data, count=40, size=max(c["image_size"] for c in configs.values()))
        for label, config in configs.items():
            base = {**config, "data": str(data)}
            started = time.perf_counter()
            (one,) = _launch("--train", [{**base, "strategy": "default", "workdir": f"{tmp}/{label}/one"}], None)
            # Each worker gets its share of the cores, as on a host of its own.
            share = max(1, (os.cpu_count() or 2) // 2)
            hosts = _hosts(2)
            two = _launch(
                "--train", [{**base, "strategy": "multi_worker", "workdir": f"{tmp}/{label}/two"}] * 2, hosts, share
            )
            # What each worker computes: half the batch on its share of the cores, alone.
            half = {**base, "batch_size": config["batch_size"] // 2, "strategy": "default"}
            (alone,) = _launch("--train", [{**half, "workdir": f"{tmp}/{label}/half"}], None, share)
            params = one["parameters"]
            floats = params["generator"] + params["discriminator"]
            hosts = _hosts(2)
            reduce = _launch("--allreduce", [{"floats": floats, "repeats": ALLREDUCE_REPEATS}] * 2, hosts)
            batch = config["batch_size"]
            row = {
                "steps": config["steps"],
                "precision": one["precision"],
                "one_process_s_per_step": one["seconds_per_step"],
                "two_workers_s_per_step": two[0]["seconds_per_step"],
                "one_process_images_per_s": batch / one["seconds_per_step"],
                "two_workers_images_per_s": batch / two[0]["seconds_per_step"],
                "half_batch_on_a_worker_share_s_per_step": alone["seconds_per_step"],
                "threads_per_worker": share,
                "gradient_bytes_per_step": 4 * floats,
                "parameters": params,
                "allreduce_s": reduce[0]["seconds"],
                "seconds": time.perf_counter() - started,
            }
            row["two_over_one"] = row["two_workers_images_per_s"] / row["one_process_images_per_s"]
            report["configs"][label] = row
            print(
                f"{label}: one process {row['one_process_images_per_s']:.1f} img/s, two workers "
                f"{row['two_workers_images_per_s']:.1f} img/s ({row['two_over_one']:.2f}x); a worker's compute "
                f"alone {1000 * row['half_batch_on_a_worker_share_s_per_step']:.1f} ms/step; all-reduce of "
                f"{row['gradient_bytes_per_step'] / 1e6:.1f} MB: {1000 * row['allreduce_s']:.1f} ms",
                flush=True,
            )
        report["tf"] = one["tf"]
    if not args.quick:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] in ("--train", "--allreduce"):
        worker = _train_worker if sys.argv[1] == "--train" else _allreduce_worker
        print(json.dumps(worker(json.loads(sys.argv[2]))))
    else:
        main()
