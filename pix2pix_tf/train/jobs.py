"""The periodic work of a run (log the losses, draw a sample grid, save a checkpoint), each on one rule.

Every job is due at the multiples of its own interval (and, but for the checkpoint, at
the run's last step), on every worker alike: the loop ends each call at the next step
any job is due or the last, so the workers of a multi-worker run cut their calls at the
same steps even where only the chief writes.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import tensorflow as tf

from pix2pix_tf.artifacts.workdir import WorkDir
from pix2pix_tf.data.pipeline import eval_dataset
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.models import generate
from pix2pix_tf.train.pacing import Pacer
from pix2pix_tf.train.samples import grid, sample_pairs
from pix2pix_tf.train.startup import Run
from pix2pix_tf.train.state import Pix2Pix


class NonFiniteLossError(Pix2PixError):
    """A loss became NaN or Inf; training stopped without saving."""


class Job:
    """Work due every `every` steps and at the run's last step, `total`.

    Subclasses say what `write` does.
    """

    def __init__(self, every: int, total: int):
        self.every, self.total = every, total

    def due(self, step: int) -> bool:
        return step % self.every == 0 or step == self.total

    def next_due(self, step: int) -> int:
        """The first step after `step` at which this job is due, or the last step if sooner (for a `step` before it)."""
        return min(step - step % self.every + self.every, self.total)

    def write(self, step: int, logs: dict[str, float]) -> None:
        """Does the job at `step`, whose losses are `logs`."""
        raise NotImplementedError


def next_due(jobs: Sequence[Job], step: int) -> int:
    """The first step after `step` at which any of `jobs` is due, or the last: where the call from `step` ends."""
    return min(job.next_due(step) for job in jobs)


def make_jobs(run: Run, pacer: Pacer) -> tuple[LogJob, SampleJob, CheckpointJob]:
    """The run's jobs, in the order they write at a step where several are due."""
    if run.role.is_chief:
        writer = tf.summary.create_file_writer(str(run.workdir.train_logs))
    else:
        writer = tf.summary.create_noop_writer()
    return LogJob(run, pacer, writer), SampleJob(run, writer), CheckpointJob(run)


class LogJob(Job):
    """Writes the losses and the speed to TensorBoard every `log_every` steps."""

    def __init__(self, run: Run, pacer: Pacer, writer):
        super().__init__(run.config.train.log_every, run.total)
        self.pacer, self.writer = pacer, writer

    def write(self, step: int, logs: dict[str, float]) -> None:
        with self.writer.as_default(step=step):
            for key, value in logs.items():
                tf.summary.scalar(key, value)
            tf.summary.scalar("images_per_second", self.pacer.images_per_second())
        self.pacer.restart_speed()


class SampleJob(Job):
    """Draws input | output | target for a few validation pairs every `sample_every` steps (the chief alone).

    Attributes:
        last_path: the grid written last, or None.
    """

    def __init__(self, run: Run, writer):
        super().__init__(run.config.train.sample_every, run.total)
        self.model, self.workdir, self.writer = run.model, run.workdir, writer
        self.last_path = None
        self.batch = None
        if run.role.is_chief:
            pairs = sample_pairs(run.data_dir, run.config, run.pairs)
            self.batch = next(iter(eval_dataset(pairs, run.config.data, batch_size=min(4, len(pairs)))))[:2]

    def write(self, step: int, logs: dict[str, float]) -> None:
        if self.batch is not None:
            self.last_path = _save_sample(self.model, self.batch, self.workdir, step, self.writer)


def _save_sample(model: Pix2Pix, batch, workdir: WorkDir, step: int, writer) -> Path:
    source, target = batch
    output = generate(model.generator, source)
    image = grid(source.numpy(), output.numpy(), target.numpy())
    path = workdir.save_sample(tf.io.encode_png(image).numpy(), step)
    with writer.as_default(step=step):
        tf.summary.image("input | output | target", image[None], max_outputs=1)
    return path


class CheckpointJob(Job):
    """Saves the train state every `checkpoint_every` steps and wherever the run stops, refusing NaN/Inf weights.

    Attributes:
        last_good: the newest checkpoint known to be good (saved or restored), or None.
        saved_step: the step of the train state saved or restored last.
    """

    def __init__(self, run: Run):
        super().__init__(run.config.train.checkpoint_every, run.total)
        self.run = run
        self.manager = None
        if run.role.is_chief:
            keep = run.config.train.keep_checkpoints
            self.manager = tf.train.CheckpointManager(run.model.checkpoint, run.workdir.checkpoints, keep)
        self.last_good, self.saved_step = run.restored, run.start

    def due(self, step: int) -> bool:
        # Not at the last step: the loop saves the step the run stops at (`save_unsaved`) once
        # the workers have agreed to stop, whether at the end, at a Ctrl-C or at the deadline.
        return step % self.every == 0

    def write(self, step: int, logs: dict[str, float] | None = None) -> None:
        run = self.run
        if not run.model.all_finite():
            raise NonFiniteLossError(
                f"weights became NaN/Inf at step {step}; not saved. The last good checkpoint "
                f"is {self.last_good or 'none (none was saved yet)'} in {run.workdir.root}"
            )
        run.model.epoch.assign(run.schedule.epoch_of(step))
        if self.manager is not None:
            self.last_good = self.manager.save(checkpoint_number=step)
            # Written only now, so that a run failing before its first checkpoint leaves
            # no settings behind for the next rerun to pick up.
            run.workdir.write_config(run.config)
        else:
            # Saving may take part in collectives, so every worker saves, as TensorFlow's
            # multi-worker guide prescribes; the others' copies go to a temporary folder.
            scratch = tempfile.mkdtemp(prefix=f"pix2pix_tf_worker{run.role.index}_")
            try:
                tf.train.CheckpointManager(run.model.checkpoint, scratch, max_to_keep=1).save(checkpoint_number=step)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            self.last_good = f"{run.workdir.checkpoints} (the chief's)"
        self.saved_step = step

    def save_unsaved(self, step: int) -> None:
        """Saves `step` unless it is the step saved or restored last: how a run that stops early keeps its work."""
        if step != self.saved_step:
            self.write(step)
