"""Run length and learning rate in steps: the reference repo's constant-then-linear-decay schedule."""

from __future__ import annotations

import dataclasses
import math

import keras
import tensorflow as tf

from pix2pix_tf.config import Config
from pix2pix_tf.errors import Pix2PixError

DEFAULT_EPOCHS = 200  # reference repo: 100 epochs constant + 100 decaying


class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Constant learning rate, then linear decay to zero over the last `decay_steps` of `total_steps`.

    The step it is called with is the optimiser's own update count, which is the
    global step however many devices share it.
    """

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
