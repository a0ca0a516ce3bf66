"""`train`: the loop that runs the steps and, through its jobs, alone writes the work dir."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import tempfile
from pathlib import Path

import tensorflow as tf

from pix2pix_tf.artifacts.files import write_json
from pix2pix_tf.checkpoints import remove_partial_saves
from pix2pix_tf.config import Config
from pix2pix_tf.data.files import PairList
from pix2pix_tf.errors import Pix2PixError, is_disk_full, short_message
from pix2pix_tf.train.distribute import distributed_stream
from pix2pix_tf.train.jobs import CheckpointJob, LogJob, NonFiniteLossError, make_jobs, next_due
from pix2pix_tf.train.pacing import Pacer
from pix2pix_tf.train.progress import CtrlC, Progress
from pix2pix_tf.train.startup import PEER_FAILURES, Run, lost_worker, start


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


def train(
    config: Config,
    data_dir: str | Path,
    workdir: str | Path,
    run_eagerly: bool = False,
    pairs: PairList | None = None,
    deadline: float | None = None,
    strategy: tf.distribute.Strategy | None = None,
    progress: bool = True,
) -> TrainResult:
    """Trains (or resumes training) until `config`'s total length.

    Rerunning in a work dir with checkpoints resumes from the latest: the model,
    both optimisers, the step, the data stream and the learning-rate schedule all
    continue where they stopped. Under a multi-worker strategy every worker runs
    this with the same arguments and the same `workdir` (shared storage); only the
    chief writes to it, and all of them resume from the chief's checkpoints.

    Args:
        config: resolved configuration (see `resolve_config`); saved in the work dir
            with a precision of "auto" replaced by this machine's choice.
        data_dir: dataset with a train split (and optionally val, used for samples).
        workdir: the output directory (see `pix2pix_tf.artifacts.workdir`).
        run_eagerly: run the steps without tf.function.
        pairs: already validated training pairs (skips the scan).
        deadline: a `pacing.clock()` time at which to stop early (with a
            checkpoint, as at the end), e.g. for a time budget.
        strategy: the devices to train on; None builds `config.train.strategy`
            (which must then happen before anything else uses TensorFlow).
        progress: print what the run chose (precision, resume), a progress line every
            `log_every` steps (a live bar on a terminal) and where it stopped; False
            prints nothing (a notebook reads the logs instead).

    Returns:
        A TrainResult with the steps run and the last losses.

    Raises:
        NonFiniteLossError: a loss became NaN/Inf; the last good checkpoint is kept.
    """
    say = print if progress else _silent
    run = start(config, data_dir, workdir, run_eagerly=run_eagerly, pairs=pairs, strategy=strategy, say=say)
    if run.start >= run.total:
        say(f"{run.workdir.root} is already at step {run.start} of {run.total}; nothing to do")
        return TrainResult(run.workdir.root, run.start, run.start, {}, None)
    t = run.config.train
    pacer = Pacer(t.steps_per_call, batch_size=run.config.data.batch_size, start_step=run.start)
    log, sample, checkpoint = jobs = make_jobs(run, pacer)
    iterator = iter(distributed_stream(run.strategy, run.pairs, run.config.data, t.seed, run.start))
    shown = Progress(run.start, run.total, t.log_every, show=progress and run.role.is_chief)
    ctrl_c, logs, out_of_time = CtrlC(), {}, False
    with _ended_cleanly(run, pacer, checkpoint, log=log, progress=shown, ctrl_c=ctrl_c):
        while pacer.step < run.total:
            first = pacer.step + 1
            losses, finite = pacer.call(run.model, iterator, stop=next_due(jobs, pacer.step))
            logs = {k: float(v) for k, v in losses.items()}
            if not bool(finite):
                raise _non_finite(logs, first, pacer.step, run, checkpoint)
            shown.update(pacer.step, logs, pacer.images_per_second())
            with pacer.writing():  # left out of the speed
                for job in jobs:
                    if job.due(pacer.step):
                        job.write(pacer.step, logs)
            pressed, late = _agree_to_stop(run, pacer, ctrl_c, deadline)
            if pressed or late:
                ctrl_c.pressed, out_of_time = pressed, late and not pressed
                break
        checkpoint.save_unsaved(pacer.step)
        if run.role.is_chief:
            _write_run_record(run, pacer.step, logs)
    step = checkpoint.saved_step  # every way out of the block above saved the step the run reached
    interrupted = ctrl_c.pressed and step < run.total  # a Ctrl-C that lands on the last step interrupts nothing
    if interrupted:
        say(f"interrupted: saved step {step} to {checkpoint.last_good}; rerun the same command to resume")
    elif out_of_time:
        say(f"time budget reached at step {step} of {run.total}; checkpoint {checkpoint.last_good}")
    else:
        say(f"trained to step {step}; checkpoint {checkpoint.last_good}")
    return TrainResult(
        run.workdir.root, run.start, step, logs, sample.last_path, pacer.seconds_per_step(step), interrupted=interrupted
    )


def _silent(*args) -> None:
    pass


def _agree_to_stop(run: Run, pacer: Pacer, ctrl_c: CtrlC, deadline: float | None) -> tuple[bool, bool]:
    """(Ctrl-C pressed, past the deadline) on any worker; also sets the next call's length to every worker's shortest.

    Workers stop together and run calls of one length (see Agreement): a Ctrl-C or a
    deadline on any worker counts for all.
    """
    late = deadline is not None and pacer.now() >= deadline
    pressed, late, shortest = run.agreement.maximum(ctrl_c.pressed, late, -pacer.per_call)
    pacer.per_call = -shortest
    return bool(pressed), bool(late)


def _non_finite(logs: dict[str, float], first: int, last: int, run: Run, checkpoint: CheckpointJob) -> Pix2PixError:
    bad = [k for k, v in logs.items() if not math.isfinite(v)] or ["a loss"]
    where = f"step {last}" if first == last else f"steps {first}-{last}"
    return NonFiniteLossError(
        f"{where}: {', '.join(f'{k} = {logs.get(k)}' for k in bad)}; training stopped without saving. "
        f"The last good checkpoint is {checkpoint.last_good or 'none (none was saved yet)'} in "
        f"{run.workdir.root}. Lower the learning rate or check the data."
    )


def _write_run_record(run: Run, step: int, logs: dict[str, float]) -> None:
    # The dataset is recorded so that export can calibrate int8 without asking again.
    write_json(
        run.workdir.run_record,
        {
            "data_dir": str(run.data_dir.resolve()),
            "step": step,
            "losses": logs,
            "precision": {"chosen": run.config.train.precision, "why": run.model.precision_reason},
            "replicas": run.strategy.num_replicas_in_sync,
            "workers": run.role.workers,
        },
    )


@contextlib.contextmanager
def _ended_cleanly(
    run: Run, pacer: Pacer, checkpoint: CheckpointJob, *, log: LogJob, progress: Progress, ctrl_c: CtrlC
):
    """Around the loop: a KeyboardInterrupt saves and returns; a lost worker or a full disk is one clear error."""
    try:
        yield
    except KeyboardInterrupt:  # pressed outside the main thread, where no handler could be set
        ctrl_c.pressed = True
        checkpoint.save_unsaved(int(run.model.step.numpy()))
    except PEER_FAILURES as e:
        if run.role.workers == 1:
            raise
        raise lost_worker(e, f"near step {pacer.step}", checkpoint.last_good) from None
    except Exception as e:
        if not is_disk_full(e):
            raise
        if not run.role.is_chief:  # its disk is the temporary folder of its checkpoint copies
            raise Pix2PixError(
                f"no space left on device in {tempfile.gettempdir()}, where this worker saves (and deletes) its "
                f"copy of each checkpoint, at step {pacer.step}: point TMPDIR at a folder with room for one "
                "checkpoint and start every worker again with the same command to resume from "
                f"{checkpoint.last_good or 'the start'}"
            ) from None
        remove_partial_saves(run.workdir.checkpoints)
        raise Pix2PixError(
            f"no space left on device in {run.workdir.root} at step {pacer.step} ({short_message(e)}); partial files "
            "removed. "
            + (
                f"The last good checkpoint is {checkpoint.last_good}: free some space and rerun the same command to "
                "resume from it"
                if checkpoint.last_good
                else "No checkpoint was saved yet: free some space and rerun the same command to start again"
            )
        ) from None
    finally:
        progress.close()
        with contextlib.suppress(Exception):  # a full disk must not hide the error above
            log.writer.flush()
        ctrl_c.restore()
