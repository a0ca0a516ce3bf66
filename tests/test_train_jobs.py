"""The loop's periodic jobs (pix2pix_tf.train.jobs): when each is due, and where the calls end."""

import contextlib

import pytest
import tensorflow as tf

from pix2pix_tf.config import Config, DataConfig, ModelConfig, TrainConfig
from pix2pix_tf.train.jobs import Job, make_jobs, next_due
from pix2pix_tf.train.pacing import Pacer
from pix2pix_tf.train.startup import start


def _due_steps(job, total):
    return [step for step in range(1, total + 1) if job.due(step)]


def test_a_job_is_due_at_the_multiples_of_its_interval_and_at_the_last_step():
    assert _due_steps(Job(every=5, total=12), 12) == [5, 10, 12]  # 12 is no multiple of 5: due as the last step
    assert _due_steps(Job(every=4, total=12), 12) == [4, 8, 12]  # the last step is a multiple: due once
    assert _due_steps(Job(every=100, total=7), 7) == [7]  # longer than the run: only at the end


def test_the_next_due_step_is_the_earliest_of_any_job():
    jobs = [Job(every=3, total=10), Job(every=4, total=10)]
    # The union of the due steps, 3 6 9 | 4 8 | 10, visited in order from the start.
    visited, step = [], 0
    while step < 10:
        step = next_due(jobs, step)
        visited.append(step)
    assert visited == [3, 4, 6, 8, 9, 10]
    assert visited == sorted({s for job in jobs for s in _due_steps(job, 10)})
    assert next_due(jobs, 5) == 6  # from between two due steps too


class _CountingModel:
    """Stands for a Pix2Pix: `train_steps` only advances the step."""

    def __init__(self):
        self.step = tf.Variable(0, dtype=tf.int64)
        self.sizes = []

    def train_steps(self, iterator, n):
        self.sizes.append(int(n))
        self.step.assign_add(n)
        return {}, tf.constant(True)


@pytest.mark.parametrize(
    "per_call,sizes",
    [
        (100, [3, 1, 2, 2, 1, 1]),  # ends at every due step: 3 4 6 8 9 10
        (2, [2, 1, 1, 2, 2, 1, 1]),  # at most 2 steps, and still ends at every due step: 2 3 4 6 8 9 10
    ],
)
def test_each_call_ends_at_the_next_step_a_job_is_due(per_call, sizes):
    jobs = [Job(every=3, total=10), Job(every=4, total=10)]
    model, pacer = _CountingModel(), Pacer(steps_per_call=per_call, clock=lambda: 0.0)
    while pacer.step < 10:
        pacer.call(model, iterator=None, stop=next_due(jobs, pacer.step))
    assert model.sizes == sizes and pacer.step == 10


def test_the_progress_speed_counts_from_the_last_logged_one():
    now = [0.0]
    pacer = Pacer(clock=lambda: now[0], batch_size=4)

    def call(n, seconds):
        pacer.call_started()
        now[0] += seconds
        pacer.call_done(n, pacer.step + n)

    now[0] += 5.0  # setting up the run: not on the speed's clock
    call(1, 2.0)
    assert pacer.images_per_second() == pytest.approx(1 * 4 / 2.0)  # from the first call, tracing included
    call(2, 1.0)
    assert pacer.images_per_second() == pytest.approx(3 * 4 / 3.0)
    pacer.restart_speed()
    with pacer.writing():  # after the restart: counted in the next span, as the logs' speed always was
        now[0] += 1.0
    call(4, 1.0)
    assert pacer.images_per_second() == pytest.approx(4 * 4 / 2.0)


def test_train_gives_each_job_its_own_interval_from_the_config(facades, tmp_path):
    config = Config(
        data=DataConfig(image_size=32, batch_size=2, direction="BtoA"),
        model=ModelConfig(ngf=8, ndf=8),
        train=TrainConfig(steps=12, log_every=2, sample_every=3, checkpoint_every=5, precision="float32"),
    )
    run = start(config, facades, tmp_path / "work", strategy=tf.distribute.get_strategy())
    jobs = log, sample, checkpoint = make_jobs(run, Pacer(start_step=run.start))
    assert _due_steps(log, 12) == [2, 4, 6, 8, 10, 12]
    assert _due_steps(sample, 12) == [3, 6, 9, 12]
    assert _due_steps(checkpoint, 12) == [5, 10]  # the last step is saved once the run has stopped
    ends, step = [], 0
    while step < 12:
        step = next_due(jobs, step)
        ends.append(step)
    assert ends == [2, 3, 4, 5, 6, 8, 9, 10, 12]


def test_only_the_first_call_runs_with_tensorflows_native_stderr_silenced(monkeypatch):
    # The first call is where TensorFlow optimises the graph (and logs its notes); stderr must be
    # back for every later call, so that a real failure is seen.
    from pix2pix_tf.train import pacing

    quiet_calls, model = [], _CountingModel()

    @contextlib.contextmanager
    def quiet():
        before = len(model.sizes)
        yield
        quiet_calls.append((before, len(model.sizes)))

    monkeypatch.setattr(pacing, "quiet_native_output", quiet)
    pacer = Pacer(steps_per_call=2, clock=lambda: 0.0)
    while pacer.step < 6:
        pacer.call(model, iterator=None, stop=6)
    assert model.sizes == [2, 2, 2] and quiet_calls == [(0, 1)]  # around the first call only
