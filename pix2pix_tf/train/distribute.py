"""Which devices a run trains on: the tf.distribute strategy, this process's role, the sharded input.

Data parallelism as TensorFlow's custom-loop guides do it. `data.batch_size` is
the global batch; each replica gets an equal share, computes its losses as means
over that share divided by the number of replicas, and Keras' optimiser sums the
gradients over all replicas, so the update is the one a single device would make
on the whole batch. Workers are coordinated only by the strategy's collectives:
nothing here sends bytes of its own.
"""

from __future__ import annotations

import dataclasses
import json
import os

import tensorflow as tf

from pix2pix_tf.config import DataConfig
from pix2pix_tf.data.files import PairList
from pix2pix_tf.data.pipeline import train_dataset
from pix2pix_tf.errors import Pix2PixError, short_message

_TF_CONFIG_HELP = (
    'TF_CONFIG must be JSON such as {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}, the same on every worker except the task index '
    "(see docs/distributed.md)"
)


def make_strategy(name: str, batch_size: int | None = None) -> tuple[tf.distribute.Strategy, str]:
    """Builds the strategy `name` names (one of config.STRATEGIES).

    Must run before TensorFlow touches a device: a multi-worker strategy configures
    the runtime's collectives, which cannot change once it has started.

    Args:
        name: "auto" (every worker of TF_CONFIG if it lists several, else
            MirroredStrategy over the GPUs if there are several, else the default
            strategy), "default" (one device), "mirrored" (every local GPU, or the
            CPU), "multi_worker" (the cluster in TF_CONFIG) or "tpu".
        batch_size: the global batch; "auto" uses several GPUs only if it splits
            evenly over them (the paper's batch 1 stays on one device).

    Returns:
        (the strategy, a one-line description for the log).
    """
    listed = _workers_in_tf_config()
    if name == "auto" and listed > 1:
        # A managed service (Kubeflow, Vertex AI) sets TF_CONFIG in every replica;
        # training each alone would have all of them write the same work dir as chief.
        strategy, devices = make_strategy("multi_worker")
        return strategy, f"{devices} (auto: TF_CONFIG lists {listed} workers)"
    if name in ("default", "mirrored") and listed > 1:
        print(f"warning: TF_CONFIG lists {listed} workers, but --strategy {name} trains this process alone")
    if name == "auto":
        gpus = len(tf.config.list_physical_devices("GPU"))
        if gpus > 1 and batch_size is not None and batch_size % gpus:
            return tf.distribute.get_strategy(), (
                f"one device (auto: batch {batch_size} does not split over {gpus} GPUs; "
                f"a multiple of {gpus} would use them all)"
            )
        if gpus > 1:
            strategy = tf.distribute.MirroredStrategy()
            return strategy, f"mirrored over {strategy.num_replicas_in_sync} GPUs (auto: more than one GPU)"
        return tf.distribute.get_strategy(), "one device (auto: fewer than two GPUs)"
    if name == "default":
        return tf.distribute.get_strategy(), "one device"
    if name == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
        devices = ", ".join(strategy.extended.worker_devices)
        return strategy, f"mirrored over {strategy.num_replicas_in_sync} local device(s) ({devices})"
    if name == "multi_worker":
        cluster = read_tf_config()
        task, workers = cluster["task"], count_workers(cluster["cluster"])
        # Building the strategy blocks until every worker has connected.
        print(f"{task['type']} {task['index']}: waiting for all {workers} workers of TF_CONFIG to connect", flush=True)
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
        except (RuntimeError, ValueError, tf.errors.OpError) as e:
            raise Pix2PixError(f"could not start the multi-worker strategy: {short_message(e)}") from None
        return strategy, (
            f"multi-worker: {task['type']} {task['index']} of {workers} workers, "
            f"{strategy.num_replicas_in_sync} replicas in all"
        )
    if name == "tpu":
        try:
            # TPU_NAME: "local" on a TPU VM, the TPU's name for a TPU node; unset, it is looked up.
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME"))
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (RuntimeError, ValueError, OSError, ImportError, tf.errors.OpError) as e:
            # OSError: a TPU name that does not resolve (the lookup is an HTTP request).
            raise Pix2PixError(f"--strategy tpu: no TPU found ({short_message(e)})") from None
        strategy = tf.distribute.TPUStrategy(resolver)
        return strategy, f"TPU with {strategy.num_replicas_in_sync} cores"
    raise Pix2PixError(f"strategy must be auto, default, mirrored, multi_worker or tpu; got {name!r}")


def read_tf_config() -> dict:
    """The cluster of a multi-worker run, read from TF_CONFIG and checked.

    Returns:
        The parsed TF_CONFIG: {"cluster": {task type: [host:port, ...]}, "task": {"type", "index"}}.
    """
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise Pix2PixError(f"--strategy multi_worker needs the TF_CONFIG environment variable; {_TF_CONFIG_HELP}")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise Pix2PixError(f"TF_CONFIG is not valid JSON ({e}); {_TF_CONFIG_HELP}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise Pix2PixError(f"TF_CONFIG needs a 'cluster' and a 'task' object; {_TF_CONFIG_HELP}")
    bad = {k for k, v in cluster.items() if not (isinstance(v, list) and all(isinstance(a, str) for a in v))}
    if bad:
        raise Pix2PixError(f"TF_CONFIG cluster entries {sorted(bad)} must be lists of 'host:port'; {_TF_CONFIG_HELP}")
    # An "evaluator" (which managed services may list) does not train and is left out.
    unknown = set(cluster) - {"chief", "worker", "evaluator"}
    if unknown:
        raise Pix2PixError(
            f"TF_CONFIG cluster has {sorted(unknown)}: a multi-worker run has only 'chief' and 'worker' tasks"
        )
    kind, index = task.get("type"), task.get("index")
    if kind == "evaluator":
        raise Pix2PixError(
            "TF_CONFIG names this task an evaluator, which does not train: use pix2pix-tf evaluate there"
        )
    whole = isinstance(index, int) and not isinstance(index, bool)  # JSON's true is not index 1
    if kind not in cluster or not whole or not 0 <= index < len(cluster[kind]):
        raise Pix2PixError(
            f"TF_CONFIG task {task} is not in the cluster {cluster}: the type must be one of "
            f"{sorted(cluster)} and the index below that list's length"
        )
    if len(cluster.get("chief", [])) > 1:
        raise Pix2PixError(f"TF_CONFIG cluster has {len(cluster['chief'])} chiefs; there can be one")
    return config


def count_workers(cluster: dict) -> int:
    """The training processes of a TF_CONFIG cluster: its chief and workers (not an evaluator)."""
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def _workers_in_tf_config() -> int:
    """How many workers TF_CONFIG lists (0 if it is unset or not a cluster)."""
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
        return count_workers(cluster) if isinstance(cluster, dict) else 0
    except (json.JSONDecodeError, AttributeError, TypeError):
        return 0


@dataclasses.dataclass(frozen=True)
class Role:
    """This process's place in the run.

    Attributes:
        is_chief: writes the work dir (the only process that does).
        index: this worker's position among `workers` (the chief is 0).
        workers: processes taking part (1 without a multi-worker strategy).
    """

    is_chief: bool = True
    index: int = 0
    workers: int = 1


def role_of(strategy: tf.distribute.Strategy) -> Role:
    """Who this process is under `strategy`: the chief is the "chief" task, or worker 0 without one."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return Role()
    resolver = strategy.cluster_resolver
    return role_in(resolver.cluster_spec().as_dict(), resolver.task_type, resolver.task_id)


def role_in(cluster: dict, kind: str, index: int) -> Role:
    """The role of task (`kind`, `index`) in `cluster` ({task type: [host:port, ...]})."""
    position = index if kind == "chief" else len(cluster.get("chief", [])) + index
    return Role(is_chief=position == 0, index=position, workers=count_workers(cluster))


def check_batch(strategy: tf.distribute.Strategy, batch_size: int) -> None:
    """Refuses a global batch that does not split evenly over the replicas."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise Pix2PixError(
            f"batch size {batch_size} does not split over {replicas} replicas; --batch-size is the global "
            f"batch and must be a multiple of {replicas} (for example {replicas * max(1, batch_size // replicas)})"
        )


def distributed_stream(strategy: tf.distribute.Strategy, pairs: PairList, cfg: DataConfig, seed: int, start_step: int):
    """The training stream of `train_dataset`, cut into each replica's share.

    Every worker builds the stream of its own slice of each global batch (it
    decodes only those images, unless `cfg.cache` holds them all), and the union
    of the slices at step s is exactly the single-device batch s: still a pure
    function of (seed, step), so resuming stays exact.

    Returns:
        An iterable of (input, target) batches: plain tensors for one replica,
        per-replica values for several.
    """
    check_batch(strategy, cfg.batch_size)
    if strategy.num_replicas_in_sync == 1 and role_of(strategy).workers == 1:
        return train_dataset(pairs, cfg, seed=seed, start_step=start_step)

    def dataset(context: tf.distribute.InputContext):
        return train_dataset(
            pairs,
            cfg,
            seed=seed,
            start_step=start_step,
            shard=(context.input_pipeline_id, context.num_input_pipelines),
            batch_size=context.get_per_replica_batch_size(cfg.batch_size),
        )

    return strategy.distribute_datasets_from_function(dataset)


class Agreement:
    """Lets every worker of a run take the same decision between calls.

    Workers decide alone when to stop (Ctrl-C, a time budget) and how many steps
    to run next (from their own timing); if they disagreed, one would wait forever
    in a collective the others never join. One small all-reduce per call settles
    both: anyone stopping stops all, and the shortest call wins.
    """

    def __init__(self, strategy: tf.distribute.Strategy):
        self.strategy = strategy
        self.needed = role_of(strategy).workers > 1

        @tf.function
        def maximum(values):
            # ReduceOp has no MAX: gather every replica's row, then take it locally.
            rows = strategy.run(lambda v: v[None], args=(values,))
            return tf.reduce_max(strategy.gather(rows, axis=0), axis=0)

        self._maximum = maximum

    def maximum(self, *values: int) -> list[int]:
        """The element-wise maximum over all workers of these integers."""
        if not self.needed:
            return list(values)
        return [int(v) for v in self._maximum(tf.constant(values, tf.int64))]

    def extremes(self, value: int) -> tuple[int, int]:
        """(lowest, highest) of `value` over all workers: equal when every worker has the same."""
        highest, negated_lowest = self.maximum(value, -value)
        return -negated_lowest, highest
