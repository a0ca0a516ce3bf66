"""How many steps each of the trainer's calls runs, and how fast its steps ran: one object, one clock.

Benchmarks import it rather than copy its rule; tests give it a fake clock, so the call
sizes and the speed they check do not depend on the machine or its load.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import tensorflow as tf

from pix2pix_tf.runtime import quiet_native_output

if TYPE_CHECKING:
    from pix2pix_tf.train.state import Pix2Pix

# With steps_per_call unset, calls are sized to last about this long: long enough that
# the per-call host work (a Python round trip, reading the losses) is a small share,
# short enough that progress, Ctrl-C and a time budget are noticed promptly.
TARGET_CALL_SECONDS = 0.2
MAX_STEPS_PER_CALL = 100


def clock() -> float:
    """Seconds from a fixed origin: what call times and `train`'s deadline are measured in."""
    return time.perf_counter()


class Pacer:
    """Sizes and runs the trainer's calls (`call`), and says how fast their steps went.

    The first call (which traces the step) runs one step and is left out of the
    speed; each later call is sized from the one before to about
    `TARGET_CALL_SECONDS`. Writing logs, samples and checkpoints between calls is
    left out of the speed too.

    Args:
        steps_per_call: a fixed call length, or None to size calls to the machine.
        clock: seconds from a fixed origin (default: this module's `clock`, looked up
            at each reading so that a test can replace it).
        batch_size: images a step, for `images_per_second`.
        start_step: the step the run starts from.

    Attributes:
        per_call: the next call's most steps; workers may agree on fewer.
        step: the step the last call brought the run to (`start_step` before any).
    """

    def __init__(
        self,
        steps_per_call: int | None = None,
        clock: Callable[[], float] | None = None,
        *,
        batch_size: int = 1,
        start_step: int = 0,
    ):
        self._clock = clock
        self.fixed = steps_per_call
        self.per_call = steps_per_call or 1
        self.batch_size = batch_size
        self.step = start_step
        self._call_start = None
        self._first_done = self._last_done = None
        self._first_step = 0
        self._writing = 0.0  # seconds spent writing after the first call
        self._writing_timed = 0.0  # the part of it before the last call ended (inside the timed span)
        # (time, step) that `images_per_second` counts from: the first call's start, so that
        # setting up the run (the sample batch, the input stream) is not on the speed's clock.
        self._speed_since = None

    def now(self) -> float:
        return (self._clock or clock)()

    def call(self, model: Pix2Pix, iterator, stop: int) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        """Runs and times one call of `model.train_steps`: at most `per_call` steps, ending at `stop` at the latest.

        Returns:
            What `train_steps` returns: (the last step's losses, whether every step's were finite).
        """
        n = max(1, min(self.per_call, stop - self.step))
        # The first call is where TensorFlow optimises the step's graph. With oneDNN on (the
        # default on some x86 CPUs) its remapper logs "E0000 ... remapper failed: ... Mutation::Apply
        # error" for an unconditional D and leaves that fusion out: a note, not an error. Only
        # this call is silenced; a real failure still raises with its message.
        with quiet_native_output() if self._first_done is None else contextlib.nullcontext():
            self.call_started()
            result = model.train_steps(iterator, tf.constant(n, tf.int64))
            self.call_done(n, int(model.step.numpy()))  # reading the step waits for the call to finish
        return result

    def call_started(self) -> None:
        self._call_start = self.now()
        if self._speed_since is None:
            self._speed_since = (self._call_start, self.step)

    def call_done(self, n: int, step: int) -> None:
        """Records the end of a call of `n` steps that brought the run to `step`; sizes the next call."""
        done = self.now()
        self.step, self._last_done = step, done
        self._writing_timed = self._writing
        if self._first_done is None:
            self._first_done, self._first_step = done, step
        elif self.fixed is None:
            took = max(done - self._call_start, 1e-9)
            self.per_call = min(MAX_STEPS_PER_CALL, max(1, round(n * TARGET_CALL_SECONDS / took)))

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Times what the block writes (logs, samples, checkpoints) to leave it out of the speed."""
        start = self.now()
        try:
            yield
        finally:
            self._writing += self.now() - start

    def images_per_second(self) -> float:
        """Since the last `restart_speed` (or the first call) up to the last call's end, writing included."""
        since, since_step = self._speed_since
        return (self.step - since_step) * self.batch_size / max(self._last_done - since, 1e-9)

    def restart_speed(self) -> None:
        """Makes `images_per_second` count from the last call's end (once the log job has logged the speed)."""
        self._speed_since = (self._last_done, self.step)

    def seconds_per_step(self, step: int) -> float | None:
        """Of the steps after the first call up to `step`, without writing; None if there were none."""
        timed = step - self._first_step if self._first_done is not None else 0
        if timed <= 0:
            return None
        return (self._last_done - self._first_done - self._writing_timed) / timed
