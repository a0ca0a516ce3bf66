"""`train`: the loop that runs the steps and alone writes the work dir (checkpoints, config, logs, samples)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import shutil
import tempfile
import zlib
from pathlib import Path

import tensorflow as tf

from pix2pix_tf.checkpoints import remove_partial_saves, restore_newest_readable
from pix2pix_tf.config import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    LOGS_DIR,
    RUN_FILE,
    SAMPLES_DIR,
    Config,
    save_config,
    write_json,
)
from pix2pix_tf.data.files import PairList, find_pairs
from pix2pix_tf.data.pipeline import eval_dataset
from pix2pix_tf.errors import Pix2PixError, is_disk_full, short_message
from pix2pix_tf.models import generate
from pix2pix_tf.precision import resolve as resolve_precision
from pix2pix_tf.train.distribute import Agreement, check_batch, distributed_stream, make_strategy, role_of
from pix2pix_tf.train.pacing import MAX_STEPS_PER_CALL, TARGET_CALL_SECONDS, Pacer  # noqa: F401 (benchmarks' import)
from pix2pix_tf.train.progress import CtrlC, Progress
from pix2pix_tf.train.samples import grid, sample_pairs
from pix2pix_tf.train.schedule import resolve_schedule
from pix2pix_tf.train.state import Pix2Pix

# How a collective fails when a worker of a multi-worker run has stopped.
_PEER_FAILURES = (
    tf.errors.UnavailableError,
    tf.errors.DeadlineExceededError,
    tf.errors.CancelledError,
    tf.errors.AbortedError,
)


class NonFiniteLossError(Pix2PixError):
    """A loss became NaN or Inf; training stopped without saving."""


@dataclasses.dataclass
class TrainResult:
    """What a call to `train` did."""

    workdir: Path
    start_step: int
    step: int
    losses: dict[str, float]
    sample_path: Path | None
    # Of the steps after the first (tracing) call, without writing logs, samples and checkpoints.
    seconds_per_step: float | None = None
    # Stopped by Ctrl-C or SIGTERM, here or (multi-worker) on another worker; a checkpoint
    # of the last step was saved.
    interrupted: bool = False


def _save_sample(model: Pix2Pix, batch, workdir: Path, step: int, writer) -> Path:
    source, target = batch
    output = generate(model.generator, source)
    image = grid(source.numpy(), output.numpy(), target.numpy())
    folder = workdir / SAMPLES_DIR
    folder.mkdir(exist_ok=True)
    png = tf.io.encode_png(image).numpy()
    path = folder / f"step_{step:07d}.png"
    path.write_bytes(png)
    (folder / "latest.png").write_bytes(png)
    with writer.as_default(step=step):
        tf.summary.image("input | output | target", image[None], max_outputs=1)
    return path


def _lost_worker(error: Exception, when: str, last_good: str | None) -> Pix2PixError:
    return Pix2PixError(
        f"lost contact with another worker {when} ({type(error).__name__}: a worker stopped or its connection "
        f"dropped; the other workers' logs say which). The last checkpoint is "
        f"{last_good or 'none (none was saved yet)'}: start every worker again with the same command to resume"
    )


def _check_same_run(agreement: Agreement, config: Config, n_pairs: int, total_steps: int) -> None:
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
            "cannot see the chief's config.json falls back to other settings); on unlike machines give --precision"
        )


def _steps_this_call(step: int, total: int, per_call: int, config: Config) -> int:
    """At most `per_call` steps, ending at the next step that logs, samples, saves or finishes."""
    t = config.train
    n = min(per_call, total - step)
    for every in (t.log_every, t.sample_every, t.checkpoint_every):
        n = min(n, every - step % every)
    return max(n, 1)


def train(
    config: Config,
    data_dir: str | Path,
    workdir: str | Path,
    run_eagerly: bool = False,
    pairs: PairList | None = None,
    deadline: float | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> TrainResult:
    """Trains (or resumes training) until `config`'s total length.

    Rerunning in a work dir with checkpoints resumes from the latest: the model,
    both optimisers, the step, the data stream and the learning-rate schedule all
    continue where they stopped.

    Under a multi-worker strategy every worker runs this with the same arguments
    and the same `workdir` (shared storage); only the chief writes to it, and all
    of them resume from the chief's checkpoints.

    Args:
        config: resolved configuration (see `resolve_config`); saved as config.json,
            with a precision of "auto" replaced by this machine's choice.
        data_dir: dataset with a train split (and optionally val, used for samples).
        workdir: output directory for config.json, checkpoints/, logs/ and samples/.
        run_eagerly: run the steps without tf.function.
        pairs: already validated training pairs (skips the scan).
        deadline: a `pacing.clock()` time at which to stop early (with a
            checkpoint, as at the end), e.g. for a time budget.
        strategy: the devices to train on; None builds `config.train.strategy`
            (which must then happen before anything else uses TensorFlow).

    Returns:
        A TrainResult with the steps run and the last losses.

    Raises:
        NonFiniteLossError: a loss became NaN/Inf; the last good checkpoint is kept.
    """
    workdir = Path(workdir)
    if strategy is None:
        strategy, devices = make_strategy(config.train.strategy, config.data.batch_size)
        # Said whenever the run is not a plain single-device one, e.g. "mirrored" that found one device.
        if config.train.strategy not in ("auto", "default") or strategy.num_replicas_in_sync > 1:
            if role_of(strategy).is_chief:
                print(f"strategy {config.train.strategy}: {devices}")
    role = role_of(strategy)
    pairs = pairs or find_pairs(data_dir, "train", config.data)
    schedule = resolve_schedule(config, len(pairs))
    checkpoint_dir = workdir / CHECKPOINT_DIR
    agreement = Agreement(strategy)
    try:
        # First, so that workers given different batches all refuse, not just one.
        _check_same_run(agreement, config, len(pairs), schedule.total_steps)
        check_batch(strategy, config.data.batch_size)
        if role.is_chief:
            workdir.mkdir(parents=True, exist_ok=True)
        model = Pix2Pix(config, schedule, run_eagerly=run_eagerly, strategy=strategy)
        restored = restore_newest_readable(model.checkpoint, checkpoint_dir)
        start = int(model.step.numpy())
        lowest, highest = agreement.extremes(start)
    except _PEER_FAILURES as e:
        if role.workers == 1:
            raise
        raise _lost_worker(e, "while the workers were starting", None) from None
    if lowest != highest:
        raise Pix2PixError(
            f"the workers resumed from different steps ({lowest} to {highest}; this one from {start}): every "
            f"worker must read the chief's {checkpoint_dir} (shared storage) and be started with the same command"
        )
    if config.train.precision != model.config.train.precision and role.is_chief:
        print(f"precision auto -> {model.config.train.precision}: {model.precision_reason}")
    config = model.config
    keep = config.train.keep_checkpoints
    manager = tf.train.CheckpointManager(model.checkpoint, checkpoint_dir, keep) if role.is_chief else None
    if restored and role.is_chief:
        print(f"resuming from step {start} ({restored})")
    if start >= schedule.total_steps:
        print(f"{workdir} is already at step {start} of {schedule.total_steps}; nothing to do")
        return TrainResult(workdir, start, start, {}, None)

    if role.is_chief:
        writer = tf.summary.create_file_writer(str(workdir / LOGS_DIR / "train"))
        samples = sample_pairs(data_dir, config, pairs)
        sample_batch = next(iter(eval_dataset(samples, config.data, batch_size=min(4, len(samples)))))[:2]
    else:
        writer = tf.summary.create_noop_writer()
    iterator = iter(distributed_stream(strategy, pairs, config.data, config.train.seed, start))
    progress = Progress(start, schedule.total_steps, config.train.log_every, show=role.is_chief)
    t = config.train

    saved_step = start
    last_good = restored

    def save(step: int):
        nonlocal saved_step, last_good
        if not model.all_finite():
            raise NonFiniteLossError(
                f"weights became NaN/Inf at step {step}; not saved. The last good checkpoint "
                f"is {last_good or 'none (none was saved yet)'} in {workdir}"
            )
        model.epoch.assign(schedule.epoch_of(step))
        if manager is not None:
            last_good = manager.save(checkpoint_number=step)
            # Written only now, so that a run failing before its first checkpoint leaves
            # no settings behind for the next rerun to pick up.
            save_config(config, workdir / CONFIG_FILE)
        else:
            # Saving may take part in collectives, so every worker saves, as TensorFlow's
            # multi-worker guide prescribes; the others' copies go to a temporary folder.
            scratch = tempfile.mkdtemp(prefix=f"pix2pix_tf_worker{role.index}_")
            try:
                tf.train.CheckpointManager(model.checkpoint, scratch, max_to_keep=1).save(checkpoint_number=step)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            last_good = f"{checkpoint_dir} (the chief's)"
        saved_step = step

    logs, sample_path, step = {}, None, start
    pacer = Pacer(t.steps_per_call)
    last_time, last_step = pacer.now(), start
    out_of_time = False
    ctrl_c = CtrlC()
    try:
        while step < schedule.total_steps:
            n = _steps_this_call(step, schedule.total_steps, pacer.per_call, config)
            pacer.call_started()
            losses, finite = model.train_steps(iterator, tf.constant(n, tf.int64))
            first, step = step + 1, int(model.step.numpy())  # waits for the call to finish
            pacer.call_done(n, step)
            logs = {k: float(v) for k, v in losses.items()}
            if not bool(finite):
                bad = [k for k, v in logs.items() if not math.isfinite(v)] or ["a loss"]
                where = f"step {step}" if n == 1 else f"steps {first}-{step}"
                raise NonFiniteLossError(
                    f"{where}: {', '.join(f'{k} = {logs.get(k)}' for k in bad)}; training stopped without saving. "
                    f"The last good checkpoint is {last_good or 'none (none was saved yet)'} in "
                    f"{workdir}. Lower the learning rate or check the data."
                )
            now = pacer.now()
            images_per_s = (step - last_step) * config.data.batch_size / max(now - last_time, 1e-9)
            progress.update(step, logs, images_per_s)
            with pacer.writing():  # left out of the speed
                if step % t.log_every == 0 or step == schedule.total_steps:
                    with writer.as_default(step=step):
                        for key, value in logs.items():
                            tf.summary.scalar(key, value)
                        tf.summary.scalar("images_per_second", images_per_s)
                    last_time, last_step = now, step
                if role.is_chief and (step % t.sample_every == 0 or step == schedule.total_steps):
                    sample_path = _save_sample(model, sample_batch, workdir, step, writer)
                if step % t.checkpoint_every == 0:
                    save(step)
            late = deadline is not None and pacer.now() >= deadline
            # Workers stop together and run calls of one length (see Agreement): a
            # Ctrl-C or a deadline on any worker counts for all.
            pressed, late, shortest = agreement.maximum(ctrl_c.pressed, late, -pacer.per_call)
            pacer.per_call = -shortest
            if pressed or late:
                ctrl_c.pressed, out_of_time = bool(pressed), bool(late) and not pressed
                break
        if step != saved_step:
            save(step)
        # The dataset is recorded so that export can calibrate int8 without asking again.
        if role.is_chief:
            write_json(
                workdir / RUN_FILE,
                {
                    "data_dir": str(Path(data_dir).resolve()),
                    "step": step,
                    "losses": logs,
                    "precision": {"chosen": config.train.precision, "why": model.precision_reason},
                    "replicas": strategy.num_replicas_in_sync,
                    "workers": role.workers,
                },
            )
    except KeyboardInterrupt:  # pressed outside the main thread, where no handler could be set
        ctrl_c.pressed = True
        step = int(model.step.numpy())
        if step != saved_step:
            save(step)
    except _PEER_FAILURES as e:
        if role.workers == 1:
            raise
        raise _lost_worker(e, f"near step {step}", last_good) from None
    except Exception as e:
        if not is_disk_full(e):
            raise
        if not role.is_chief:  # its disk is the temporary folder of its checkpoint copies
            raise Pix2PixError(
                f"no space left on device in {tempfile.gettempdir()}, where this worker saves (and deletes) its "
                f"copy of each checkpoint, at step {step}: point TMPDIR at a folder with room for one checkpoint "
                f"and start every worker again with the same command to resume from {last_good or 'the start'}"
            ) from None
        remove_partial_saves(checkpoint_dir)
        raise Pix2PixError(
            f"no space left on device in {workdir} at step {step} ({short_message(e)}); partial files removed. "
            + (
                f"The last good checkpoint is {last_good}: free some space and rerun the same command to resume from it"
                if last_good
                else "No checkpoint was saved yet: free some space and rerun the same command to start again"
            )
        ) from None
    finally:
        progress.close()
        with contextlib.suppress(Exception):  # a full disk must not hide the error above
            writer.flush()
        ctrl_c.restore()
    # A Ctrl-C that lands on the last step interrupts nothing.
    interrupted = ctrl_c.pressed and step < schedule.total_steps
    if interrupted:
        print(f"interrupted: saved step {step} to {last_good}; rerun the same command to resume")
    elif out_of_time:
        print(f"time budget reached at step {step} of {schedule.total_steps}; checkpoint {last_good}")
    else:
        print(f"trained to step {step}; checkpoint {last_good}")
    return TrainResult(workdir, start, step, logs, sample_path, pacer.seconds_per_step(step), interrupted=interrupted)
