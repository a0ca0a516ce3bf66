"""Training: the two-tape train step of the paper, the loop, checkpoints and logs.

Plan of one step (paper sec. 3 and the reference implementation):
  1. G translates the input; D scores (input, target) and (input, G(input)) patch-wise.
  2. G's loss: fool D on its output + lambda * L1 to the target (terms switchable).
  3. D's loss: real patches -> 1, generated patches -> 0, halved.
  4. One Adam(2e-4, beta1 0.5) update each, from two independent gradient tapes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pix2pix_tf.checkpoints import remove_partial_saves, restore_newest_readable
from pix2pix_tf.config import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    LOGS_DIR,
    RUN_FILE,
    SAMPLES_DIR,
    Config,
    load_config,
    save_config,
    write_json,
)
from pix2pix_tf.data.files import PairList, find_pairs
from pix2pix_tf.data.pipeline import eval_dataset, to_uint8, train_dataset
from pix2pix_tf.errors import Pix2PixError, is_disk_full, short_message
from pix2pix_tf.losses import discriminator_loss, generator_loss
from pix2pix_tf.models import build_models, generate
from pix2pix_tf.precision import resolve as resolve_precision

DEFAULT_EPOCHS = 200  # reference repo: 100 epochs constant + 100 decaying

# Sections whose change makes old checkpoints unusable; "train" may change on resume.
_SHAPE_FIELDS = {"data": ("image_size", "channels", "direction"), "model": None}


class NonFiniteLossError(Pix2PixError):
    """A loss became NaN or Inf; training stopped without saving."""


class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Constant learning rate, then linear decay to zero over the last `decay_steps` of `total_steps`."""

    def __init__(self, initial: float, total_steps: int, decay_steps: int):
        self.initial = initial
        self.total_steps = total_steps
        self.decay_steps = max(decay_steps, 1)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        remaining = tf.cast(self.total_steps, tf.float32) - step
        return self.initial * tf.clip_by_value(remaining / self.decay_steps, 0.0, 1.0)

    def get_config(self):
        return {"initial": self.initial, "total_steps": self.total_steps, "decay_steps": self.decay_steps}


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Run length and learning-rate decay in steps, resolved for one dataset size."""

    total_steps: int
    decay_steps: int
    images_per_epoch: int
    batch_size: int

    def epoch_of(self, step: int) -> int:
        return step * self.batch_size // self.images_per_epoch


def resolve_schedule(config: Config, n_images: int) -> Schedule:
    """Turns steps / epochs (and their decay part) into step counts for `n_images` training pairs."""
    t, batch = config.train, config.data.batch_size

    def steps_for(epochs):
        return math.ceil(epochs * n_images / batch)

    if t.steps is not None:
        total = t.steps
    else:
        total = steps_for(t.epochs if t.epochs is not None else DEFAULT_EPOCHS)
    if t.decay_steps is not None:
        decay = t.decay_steps
    elif t.decay_epochs is not None:
        decay = steps_for(t.decay_epochs)
    else:
        decay = total // 2
    if decay > total:
        raise Pix2PixError(f"the decay ({decay} steps) is longer than the run ({total} steps)")
    return Schedule(total, decay, n_images, batch)


class Pix2Pix:
    """The generator, the discriminator, their optimisers and the train step.

    Args:
        config: the run configuration.
        schedule: resolved run length (for the learning-rate decay).
        run_eagerly: run the step without tf.function, for debugging.
    """

    def __init__(self, config: Config, schedule: Schedule, run_eagerly: bool = False):
        precision, self.precision_reason = resolve_precision(config.train.precision)
        # The concrete choice is what config.json records, so a resumed run keeps it.
        self.config = config = config.replace(train={"precision": precision})
        keras.utils.set_random_seed(config.train.seed)
        self.generator, self.discriminator = build_models(config, seed=config.train.seed)
        self.g_optimizer = self._optimizer(schedule, "g_optimizer")
        self.d_optimizer = self._optimizer(schedule, "d_optimizer")
        # Creating the slots now avoids a retrace at the first step and lets a
        # checkpoint restore them immediately.
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        # Dropout's random state lives in Keras seed generators, which a checkpoint
        # of the model alone does not hold; saving it makes a resumed run identical.
        seeds = [v.value for v in self.generator.non_trainable_variables if "seed_generator" in v.path]
        self.checkpoint = tf.train.Checkpoint(
            generator=self.generator,
            discriminator=self.discriminator,
            g_optimizer=self.g_optimizer,
            d_optimizer=self.d_optimizer,
            step=self.step,
            epoch=self.epoch,
            dropout_seeds=seeds,
        )
        self.train_step = self._train_step if run_eagerly else tf.function(self._train_step, reduce_retracing=True)

    def _optimizer(self, schedule: Schedule, name: str) -> keras.optimizers.Optimizer:
        t = self.config.train
        lr = LinearDecay(t.learning_rate, schedule.total_steps, schedule.decay_steps)
        optimizer = keras.optimizers.Adam(lr, beta_1=t.beta_1, name=name)
        if t.precision == "mixed_float16":  # float16 gradients underflow without loss scaling
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer, name=name)
        return optimizer

    def discriminate(self, source, image, training: bool):
        """D's logits for `image` given `source` (ignored by an unconditional D)."""
        inputs = [source, image] if self.config.model.conditional else image
        return self.discriminator(inputs, training=training)

    def _train_step(self, source, target) -> dict[str, tf.Tensor]:
        t = self.config.train
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            generated = self.generator(source, training=True)
            real_logits = self.discriminate(source, target, training=True)
            fake_logits = self.discriminate(source, generated, training=True)
            g_losses = generator_loss(fake_logits, generated, target, t.lambda_l1, t.use_gan, t.use_l1, t.gan_loss)
            d_losses = discriminator_loss(real_logits, fake_logits, t.gan_loss)
            g_objective, d_objective = g_losses["g_total"], d_losses["d_total"]
            if t.precision == "mixed_float16":
                g_objective = self.g_optimizer.scale_loss(g_objective)
                d_objective = self.d_optimizer.scale_loss(d_objective)
        g_grads = g_tape.gradient(g_objective, self.generator.trainable_variables)
        self.g_optimizer.apply(g_grads, self.generator.trainable_variables)
        if t.use_gan:  # the L1-only baseline has no adversary to train
            d_grads = d_tape.gradient(d_objective, self.discriminator.trainable_variables)
            self.d_optimizer.apply(d_grads, self.discriminator.trainable_variables)
        return {**g_losses, **d_losses, "learning_rate": self.g_optimizer.learning_rate}

    def all_finite(self) -> bool:
        """True if no weight of G or D is NaN or Inf (checked before every save)."""
        variables = self.generator.trainable_variables + self.discriminator.trainable_variables
        return bool(tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in variables]))


def resolve_config(workdir: str | Path, base: Config, overrides: dict[str, dict]) -> Config:
    """The configuration for (re)running training in `workdir`.

    A new work dir takes `base` with `overrides`. An existing one starts from its
    saved config.json, so rerunning needs no flags repeated; explicit overrides of
    the model or the image format must agree with it (old checkpoints could not be
    loaded otherwise), while training settings such as the length may change.

    Args:
        workdir: the run directory.
        base: defaults or a preset, used for a new work dir.
        overrides: per section, the options given explicitly, e.g. {"train": {"steps": 40}}.
    """
    path = Path(workdir) / CONFIG_FILE
    if not path.exists():
        return base.replace(**overrides)
    saved = load_config(path)
    conflicts = []
    for section, fields in _SHAPE_FIELDS.items():
        for key, value in overrides.get(section, {}).items():
            old = getattr(getattr(saved, section), key)
            if (fields is None or key in fields) and value != old:
                conflicts.append(f"{section}.{key}: trained with {old!r}, asked for {value!r}")
    if conflicts:
        raise Pix2PixError(
            f"{path} does not match this command ({'; '.join(conflicts)}); "
            "drop those options to resume, or use a new --workdir"
        )
    return saved.replace(**overrides)


def _grid(*columns: np.ndarray) -> np.ndarray:
    """Rows of (input | output | target) from [-1, 1] batches, as uint8 (H*batch, W*3, 3)."""
    rows = np.concatenate([np.concatenate(list(images), axis=0) for images in columns], axis=1)
    if rows.shape[-1] == 1:
        rows = np.repeat(rows, 3, axis=-1)
    return to_uint8(rows).numpy()


class _Progress:
    """A one-line progress bar on a terminal, a log line every `every` steps otherwise."""

    def __init__(self, start: int, total: int, every: int):
        self.start, self.total, self.every = start, total, every
        self.tty = sys.stdout.isatty()
        self.t0 = time.perf_counter()

    def update(self, step: int, logs: dict[str, float], images_per_s: float):
        if not self.tty and step % self.every and step != self.total:
            return
        done = (step - self.start) / max(self.total - self.start, 1)
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / max(step - self.start, 1) * (self.total - step)
        bar = "=" * int(20 * done) + ">" + "." * (20 - int(20 * done))
        losses = " ".join(f"{k} {logs[k]:.4g}" for k in ("g_total", "g_gan", "g_l1", "d_total"))
        line = f"step {step}/{self.total} [{bar}] {losses} | {images_per_s:.1f} img/s | eta {eta:.0f}s"
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", flush=True)

    def close(self):
        if self.tty:
            print()


@dataclasses.dataclass
class TrainResult:
    """What a call to `train` did."""

    workdir: Path
    start_step: int
    step: int
    losses: dict[str, float]
    sample_path: Path | None
    seconds_per_step: float | None = None  # of the steps after the first (tracing) one, without file writing
    interrupted: bool = False  # stopped by Ctrl-C (a checkpoint of the last step was saved)


def _save_sample(model: Pix2Pix, batch, workdir: Path, step: int, writer) -> Path:
    source, target = batch
    output = generate(model.generator, source)
    grid = _grid(source.numpy(), output.numpy(), target.numpy())
    folder = workdir / SAMPLES_DIR
    folder.mkdir(exist_ok=True)
    png = tf.io.encode_png(grid).numpy()
    path = folder / f"step_{step:07d}.png"
    path.write_bytes(png)
    (folder / "latest.png").write_bytes(png)
    with writer.as_default(step=step):
        tf.summary.image("input | output | target", grid[None], max_outputs=1)
    return path


def train(
    config: Config,
    data_dir: str | Path,
    workdir: str | Path,
    run_eagerly: bool = False,
    pairs: PairList | None = None,
    deadline: float | None = None,
) -> TrainResult:
    """Trains (or resumes training) until `config`'s total length.

    Rerunning in a work dir with checkpoints resumes from the latest: the model,
    both optimisers, the step, the data stream and the learning-rate schedule all
    continue where they stopped.

    Args:
        config: resolved configuration (see `resolve_config`); saved as config.json.
        data_dir: dataset with a train split (and optionally val, used for samples).
        workdir: output directory for config.json, checkpoints/, logs/ and samples/.
        run_eagerly: run the step without tf.function.
        pairs: already validated training pairs (skips the scan).
        deadline: a `time.monotonic()` time at which to stop early (with a
            checkpoint, as at the end), e.g. for a time budget.

    Returns:
        A TrainResult with the steps run and the last losses.

    Raises:
        NonFiniteLossError: a loss became NaN/Inf; the last good checkpoint is kept.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    pairs = pairs or find_pairs(data_dir, "train", config.data)
    schedule = resolve_schedule(config, len(pairs))
    model = Pix2Pix(config, schedule, run_eagerly=run_eagerly)
    if config.train.precision != model.config.train.precision:
        print(f"precision auto -> {model.config.train.precision}: {model.precision_reason}")
    config = model.config
    checkpoint_dir = workdir / CHECKPOINT_DIR
    restored = restore_newest_readable(model.checkpoint, checkpoint_dir)
    manager = tf.train.CheckpointManager(model.checkpoint, checkpoint_dir, max_to_keep=config.train.keep_checkpoints)
    if restored:
        print(f"resuming from step {int(model.step)} ({restored})")
    start = int(model.step)
    if start >= schedule.total_steps:
        print(f"{workdir} is already at step {start} of {schedule.total_steps}; nothing to do")
        return TrainResult(workdir, start, start, {}, None)

    writer = tf.summary.create_file_writer(str(workdir / LOGS_DIR / "train"))
    sample_pairs = _sample_pairs(data_dir, config, pairs)
    sample_batch = next(iter(eval_dataset(sample_pairs, config.data, batch_size=min(4, len(sample_pairs)))))[:2]
    stream = train_dataset(pairs, config.data, seed=config.train.seed, start_step=start)
    progress = _Progress(start, schedule.total_steps, config.train.log_every)
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
        last_good = manager.save(checkpoint_number=step)
        # Written only now, so that a run failing before its first checkpoint leaves
        # no settings behind for the next rerun to pick up.
        save_config(config, workdir / CONFIG_FILE)
        saved_step = step

    logs, sample_path, step = {}, None, start
    last_time, last_step = time.perf_counter(), start
    first_step_done = last_step_done = None
    out_of_time = False
    ctrl_c = _CtrlC()
    try:
        for source, target in stream:
            losses = model.train_step(source, target)
            step += 1
            model.step.assign(step)
            logs = {k: float(v) for k, v in losses.items()}
            # Step times only: samples, logs and checkpoints are left out of the speed.
            last_step_done = time.perf_counter()
            if first_step_done is None:
                first_step_done = last_step_done
            bad = [k for k, v in logs.items() if not math.isfinite(v)]
            if bad:
                raise NonFiniteLossError(
                    f"step {step}: {', '.join(f'{k} = {logs[k]}' for k in bad)}; training stopped without saving. "
                    f"The last good checkpoint is {last_good or 'none (none was saved yet)'} in "
                    f"{workdir}. Lower the learning rate or check the data."
                )
            now = time.perf_counter()
            images_per_s = (step - last_step) * config.data.batch_size / max(now - last_time, 1e-9)
            progress.update(step, logs, images_per_s)
            if step % t.log_every == 0 or step == schedule.total_steps:
                with writer.as_default(step=step):
                    for key, value in logs.items():
                        tf.summary.scalar(key, value)
                    tf.summary.scalar("images_per_second", images_per_s)
                last_time, last_step = now, step
            if step % t.sample_every == 0 or step == schedule.total_steps:
                sample_path = _save_sample(model, sample_batch, workdir, step, writer)
            if step % t.checkpoint_every == 0:
                save(step)
            if step >= schedule.total_steps or ctrl_c.pressed:
                break
            if deadline is not None and time.monotonic() >= deadline:
                out_of_time = True
                break
        if step != saved_step:
            save(step)
        # The dataset is recorded so that export can calibrate int8 without asking again.
        write_json(
            workdir / RUN_FILE,
            {
                "data_dir": str(Path(data_dir).resolve()),
                "step": step,
                "losses": logs,
                "precision": {"chosen": config.train.precision, "why": model.precision_reason},
            },
        )
    except KeyboardInterrupt:  # pressed outside the main thread, where no handler could be set
        ctrl_c.pressed = True
        if step != saved_step:
            save(step)
    except Exception as e:
        if not is_disk_full(e):
            raise
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
    per_step = (last_step_done - first_step_done) / (step - start - 1) if step - start > 1 else None
    return TrainResult(workdir, start, step, logs, sample_path, per_step, interrupted=interrupted)


def _sample_pairs(data_dir, config: Config, train_pairs: PairList) -> PairList:
    """Validation pairs for the sample grid if the dataset has a val split, else training pairs."""
    try:
        return find_pairs(data_dir, "val", dataclasses.replace(config.data, skip_bad=True))
    except Pix2PixError:
        return train_pairs


class _CtrlC:
    """Turns Ctrl-C into a flag checked between steps, so a step is never cut in half."""

    def __init__(self):
        self.pressed = False
        try:
            self.previous = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread: Ctrl-C stays a KeyboardInterrupt
            self.previous = None

    def _handler(self, signum, frame):
        self.pressed = True

    def restore(self):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
