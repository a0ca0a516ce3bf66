"""How a run starts: its devices, every worker's agreement on the settings, the train state restored.

Everything here happens before the first step, and on every worker alike: a run whose
workers disagree on the settings, the batch or the step they resume from is refused
here, before they could wait on each other in collectives that never match.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

from pix2pix_tf.artifacts.workdir import WorkDir
from pix2pix_tf.checkpoints import restore_newest_readable
from pix2pix_tf.config import Config
from pix2pix_tf.data.files import PairList, find_pairs
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.precision import resolve as resolve_precision
from pix2pix_tf.train.distribute import Agreement, Role, check_batch, make_strategy, role_of
from pix2pix_tf.train.schedule import Schedule, resolve_schedule
from pix2pix_tf.train.state import Pix2Pix

# How a collective fails when a worker of a multi-worker run has stopped.
PEER_FAILURES = (
    tf.errors.UnavailableError,
    tf.errors.DeadlineExceededError,
    tf.errors.CancelledError,
    tf.errors.AbortedError,
)


@dataclasses.dataclass(frozen=True)
class Run:
    """A started run: what the loop and its periodic jobs work with.

    Attributes:
        config: the run's configuration, with "auto" precision replaced by this machine's choice.
        data_dir: the dataset.
        workdir: the work dir (only the chief writes to it).
        strategy: the devices the steps run on.
        role: this process's place among the workers.
        agreement: how the workers take a decision together between calls.
        pairs: the training pairs.
        schedule: the run length and learning-rate decay.
        model: the train state, restored from the newest readable checkpoint if any.
        start: the step the run starts from (0 for a new one).
        restored: the checkpoint restored, or None.
    """

    config: Config
    data_dir: Path
    workdir: WorkDir
    strategy: tf.distribute.Strategy
    role: Role
    agreement: Agreement
    pairs: PairList
    schedule: Schedule
    model: Pix2Pix
    start: int
    restored: str | None

    @property
    def total(self) -> int:
        """The run's last step."""
        return self.schedule.total_steps


def start(
    config: Config,
    data_dir: str | Path,
    workdir: str | Path,
    *,
    run_eagerly: bool = False,
    pairs: PairList | None = None,
    strategy: tf.distribute.Strategy | None = None,
    say: Callable[[str], None] = print,
) -> Run:
    """Builds the strategy (unless given) and the train state, and restores it; says what it chose.

    Args:
        config: resolved configuration; its precision may still be "auto".
        data_dir: dataset with a train split.
        workdir: the work dir to resume from (created here by the chief).
        run_eagerly: run the steps without tf.function.
        pairs: already validated training pairs (skips the scan).
        strategy: the devices to train on; None builds `config.train.strategy`.

    Raises:
        Pix2PixError: the workers were started with different settings, data or
            checkpoints, or one of them stopped while they were starting.
    """
    workdir = WorkDir(workdir)
    if strategy is None:
        strategy, devices = make_strategy(config.train.strategy, config.data.batch_size)
        # Said whenever the run is not a plain single-device one, e.g. "mirrored" that found one device.
        if config.train.strategy not in ("auto", "default") or strategy.num_replicas_in_sync > 1:
            if role_of(strategy).is_chief:
                say(f"strategy {config.train.strategy}: {devices}")
    role = role_of(strategy)
    pairs = pairs or find_pairs(data_dir, "train", config.data)
    schedule = resolve_schedule(config, len(pairs))
    agreement = Agreement(strategy)
    try:
        # First, so that workers given different batches all refuse, not just one.
        _check_same_run(agreement, config, len(pairs), schedule.total_steps, workdir)
        check_batch(strategy, config.data.batch_size)
        if role.is_chief:
            workdir.root.mkdir(parents=True, exist_ok=True)
        model = Pix2Pix(config, schedule, run_eagerly=run_eagerly, strategy=strategy)
        restored = restore_newest_readable(model.checkpoint, workdir.checkpoints)
        step = int(model.step.numpy())
        lowest, highest = agreement.extremes(step)
    except PEER_FAILURES as e:
        if role.workers == 1:
            raise
        raise lost_worker(e, "while the workers were starting", None) from None
    if lowest != highest:
        raise Pix2PixError(
            f"the workers resumed from different steps ({lowest} to {highest}; this one from {step}): every "
            f"worker must read the chief's {workdir.checkpoints} (shared storage) and be started with the same command"
        )
    if config.train.precision != model.config.train.precision and role.is_chief:
        say(f"precision auto -> {model.config.train.precision}: {model.precision_reason}")
    if restored and role.is_chief:
        say(f"resuming from step {step} ({restored})")
    return Run(
        config=model.config,
        data_dir=Path(data_dir),
        workdir=workdir,
        strategy=strategy,
        role=role,
        agreement=agreement,
        pairs=pairs,
        schedule=schedule,
        model=model,
        start=step,
        restored=restored,
    )


def lost_worker(error: Exception, when: str, last_good: str | None) -> Pix2PixError:
    """The error for a collective that failed because another worker stopped (`error` is one of `PEER_FAILURES`)."""
    return Pix2PixError(
        f"lost contact with another worker {when} ({type(error).__name__}: a worker stopped or its connection "
        f"dropped; the other workers' logs say which). The last checkpoint is "
        f"{last_good or 'none (none was saved yet)'}: start every worker again with the same command to resume"
    )


def _check_same_run(agreement: Agreement, config: Config, n_pairs: int, total_steps: int, workdir: WorkDir) -> None:
    """Refuses workers started with different settings or data, before they build anything.

    Workers that disagree on the step count, the batch or when to save would run
    different collectives and wait on each other forever, all alive and silent.
    """
    precision, _ = resolve_precision(config.train.precision)
    settings = config.replace(train={"precision": precision}).to_dict()
    del settings["train"]["strategy"]  # "auto" and "multi_worker" build the same one here
    settings = json.dumps(settings, sort_keys=True)
    fingerprint = zlib.crc32(f"{settings}|{n_pairs}|{total_steps}".encode())
    lowest, highest = agreement.extremes(fingerprint)
    if lowest != highest:
        raise Pix2PixError(
            "the workers were started with different settings or data (the options, the precision auto chose, "
            f"the number of training pairs: {n_pairs} here, or the run length: {total_steps} steps here): run "
            "the same command on every worker, with the same data and a work dir they share (a worker that "
            f"cannot see the chief's {workdir.config.name} falls back to other settings); on unlike machines give "
            "--precision"
        )
