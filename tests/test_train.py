import json
import os
import shutil
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf
from helpers import FakeClock

from pix2pix_tf.artifacts import resolve_config
from pix2pix_tf.config import Config, DataConfig, ModelConfig, TrainConfig
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.train import LinearDecay, NonFiniteLossError, Pix2Pix, Schedule, pacing, train
from pix2pix_tf.train import jobs as jobs_mod
from pix2pix_tf.train import loop as loop_mod
from pix2pix_tf.train import schedule as schedule_mod
from pix2pix_tf.train import startup as startup_mod
from pix2pix_tf.train import state as state_mod

TINY = Config(
    data=DataConfig(image_size=32, batch_size=2, direction="BtoA"),
    model=ModelConfig(ngf=8, ndf=8),
    train=TrainConfig(steps=6, log_every=1, sample_every=3, checkpoint_every=100, precision="float32"),
)
SCHEDULE = Schedule(total_steps=100, decay_steps=50, images_per_epoch=10, batch_size=2)


# `facades` (12 pairs at 32 px: 10 train, 1 val, 1 test) is the session's, from tests/conftest.py.


# Set-up runs for the tests that go on from a trained work dir, each test on a copy.
# Eagerly: the work dir is the same, and tracing the step would cost more than the steps.
@pytest.fixture(scope="module")
def two_steps(facades, tmp_path_factory):
    """TINY trained 2 steps (ckpt-2)."""
    work = tmp_path_factory.mktemp("two_steps")
    train(TINY.replace(train={"steps": 2}), facades, work, run_eagerly=True)
    return work


@pytest.fixture(scope="module")
def four_steps(facades, tmp_path_factory):
    """TINY trained 4 steps with a checkpoint every 2 (ckpt-2, ckpt-4)."""
    work = tmp_path_factory.mktemp("four_steps")
    train(TINY.replace(train={"steps": 4, "checkpoint_every": 2}), facades, work, run_eagerly=True)
    return work


def _batch(seed=0):
    g = tf.random.Generator.from_seed(seed)
    return g.uniform((2, 32, 32, 3), -1, 1), g.uniform((2, 32, 32, 3), -1, 1)


def _weights(model: Pix2Pix):
    return [v.numpy().copy() for v in model.generator.trainable_variables + model.discriminator.trainable_variables]


def test_one_step_changes_every_trainable_variable():
    model = Pix2Pix(TINY, SCHEDULE)
    before = _weights(model)
    losses = model.train_step(*_batch())
    assert set(losses) >= {"g_total", "g_gan", "g_l1", "d_total", "d_real", "d_fake", "learning_rate"}
    variables = model.generator.trainable_variables + model.discriminator.trainable_variables
    unchanged = [v.path for v, b in zip(variables, before) if np.array_equal(v.numpy(), b)]
    assert unchanged == []


def test_eager_and_tf_function_steps_agree():
    eager, graph = Pix2Pix(TINY, SCHEDULE, run_eagerly=True), Pix2Pix(TINY, SCHEDULE)
    for w_e, w_g in zip(_weights(eager), _weights(graph)):
        np.testing.assert_array_equal(w_e, w_g)  # same seed, same initial weights
    for _ in range(2):
        batch = _batch(1)
        le, lg = eager.train_step(*batch), graph.train_step(*batch)
        for key in le:
            np.testing.assert_allclose(float(le[key]), float(lg[key]), rtol=1e-4, atol=1e-6)


def test_l1_only_baseline_leaves_d_untouched():
    model = Pix2Pix(TINY.replace(train={"use_gan": False}), SCHEDULE)
    before = [v.numpy().copy() for v in model.discriminator.trainable_variables]
    losses = model.train_step(*_batch())
    assert float(losses["g_total"]) == pytest.approx(100 * float(losses["g_l1"]), rel=1e-5)
    for v, b in zip(model.discriminator.trainable_variables, before):
        np.testing.assert_array_equal(v.numpy(), b)


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_steps(precision):
    model = Pix2Pix(TINY.replace(train={"precision": precision}), SCHEDULE)
    compute = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}[precision]
    assert model.generator.get_layer("down2_conv").compute_dtype == compute
    assert model.generator.output.dtype == "float32"
    assert all(v.dtype == "float32" for v in model.generator.trainable_variables)
    before = _weights(model)
    for _ in range(3):  # float16 loss scaling may skip a step whose gradients overflow
        losses = model.train_step(*_batch())
    assert all(v.dtype == tf.float32 and np.isfinite(float(v)) for v in losses.values())
    assert not np.array_equal(before[0], _weights(model)[0])


def test_overfitting_one_batch_cuts_l1_five_fold(facades):
    # The full objective (L1 + cGAN, dropout on) on one fixed batch of two facades.
    from pix2pix_tf.data import eval_dataset, find_pairs

    source, target, _ = next(iter(eval_dataset(find_pairs(facades, "train", TINY.data), TINY.data, 2)))
    model = Pix2Pix(TINY.replace(model={"ngf": 16}), Schedule(10_000, 1, 2, 2))
    l1 = [float(model.train_step(source, target)["g_l1"])]
    for _ in range(400):  # bound: 400 steps
        l1.append(float(model.train_step(source, target)["g_l1"]))
        if l1[-1] < l1[0] / 5:
            break
    assert l1[-1] < l1[0] / 5, f"L1 went from {l1[0]:.3f} to {l1[-1]:.3f} in {len(l1)} steps"


def test_the_logged_learning_rate_is_the_one_the_step_used():
    # Decaying from step 0 over 4 steps: step k (from 1) runs at lr * (5 - k) / 4. The
    # rate read after the update is the next step's (0 after the last one).
    schedule = Schedule(total_steps=4, decay_steps=4, images_per_epoch=10, batch_size=2)
    lr = TINY.train.learning_rate
    for run_eagerly in (True, False):
        model = Pix2Pix(TINY, schedule, run_eagerly=run_eagerly)
        used = [float(model.train_step(*_batch())["learning_rate"]) for _ in range(4)]
        assert used == pytest.approx([lr, 0.75 * lr, 0.5 * lr, 0.25 * lr])


def test_linear_decay_schedule():
    lr = LinearDecay(2e-4, total_steps=10, decay_steps=4)
    values = [float(lr(s)) for s in range(11)]
    assert values[:7] == pytest.approx([2e-4] * 7)  # constant until 4 steps remain
    assert values[7:] == pytest.approx([1.5e-4, 1e-4, 0.5e-4, 0.0])


def test_schedule_from_epochs_steps_and_defaults():
    cfg = TINY.replace(train={"steps": None, "epochs": 10, "decay_epochs": 4})
    s = schedule_mod.resolve_schedule(cfg, n_images=9)  # batch 2: 4.5 steps per epoch
    assert (s.total_steps, s.decay_steps) == (45, 18)
    s = schedule_mod.resolve_schedule(TINY.replace(train={"steps": None}), n_images=10)
    assert (s.total_steps, s.decay_steps) == (1000, 500)  # 200 epochs, the second half decaying
    assert s.epoch_of(12) == 2
    with pytest.raises(Pix2PixError, match="decay .* is longer than the run"):
        schedule_mod.resolve_schedule(TINY.replace(train={"decay_steps": 7}), 10)


def _stop_after(monkeypatch, k):
    """Makes the next `train` call stop after k steps, as Ctrl-C does (checkpoint saved, then exit)."""
    real = startup_mod.Pix2Pix
    calls = []

    class StopsAfterK(real):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            calls.append(self)

    class PressedAtK(loop_mod.CtrlC):
        @property
        def pressed(self):
            return self._pressed or (len(calls) == 1 and int(calls[0].step) >= k)

        @pressed.setter
        def pressed(self, value):
            self._pressed = value

    monkeypatch.setattr(startup_mod, "Pix2Pix", StopsAfterK)
    monkeypatch.setattr(loop_mod, "CtrlC", PressedAtK)


def test_resume_gives_the_same_weights_as_a_straight_run(facades, tmp_path, monkeypatch):
    # 6 steps with the learning rate decaying from step 0, so a resumed run that
    # restarted the schedule, the data stream or the dropout noise would differ.
    config = TINY.replace(train={"steps": 6, "decay_steps": 6})
    straight = train(config, facades, tmp_path / "straight")
    _stop_after(monkeypatch, 3)
    first = train(config, facades, tmp_path / "resumed")
    assert first.step == 3
    second = train(config, facades, tmp_path / "resumed")
    assert (second.start_step, second.step) == (3, 6)
    assert second.losses["learning_rate"] == pytest.approx(straight.losses["learning_rate"])
    # The last step's rate: 1 of the 6 decay steps left (the rate after it, 0, is no step's).
    assert second.losses["learning_rate"] == pytest.approx(TINY.train.learning_rate / 6)
    a = tf.train.load_checkpoint(str(tmp_path / "straight/checkpoints/ckpt-6"))
    b = tf.train.load_checkpoint(str(tmp_path / "resumed/checkpoints/ckpt-6"))
    names = [n for n, _ in tf.train.list_variables(str(tmp_path / "straight/checkpoints/ckpt-6"))]
    assert len(names) > 100  # weights, optimiser slots, batch-norm statistics, dropout seeds, step
    # Tolerance: float32 reductions may be ordered differently across runs on CPU.
    for name in names:
        if name not in ("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter/.ATTRIBUTES/VARIABLE_VALUE"):
            np.testing.assert_allclose(a.get_tensor(name), b.get_tensor(name), rtol=1e-5, atol=1e-6, err_msg=name)


def test_rerun_at_the_end_does_nothing_and_more_steps_continue(facades, two_steps, tmp_path, capsys):
    shutil.copytree(two_steps, tmp_path, dirs_exist_ok=True)
    again = train(TINY.replace(train={"steps": 2}), facades, tmp_path)
    assert (again.start_step, again.step) == (2, 2)
    assert "nothing to do" in capsys.readouterr().out
    more = train(resolve_config(tmp_path, Config(), {"train": {"steps": 4}}), facades, tmp_path)
    assert (more.start_step, more.step) == (2, 4)
    assert "resuming from step 2" in capsys.readouterr().out


def test_workdir_contents(facades, tmp_path):
    result = train(TINY, facades, tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["data"]["image_size"] == 32 and saved["model"]["ngf"] == 8
    assert (tmp_path / "samples/step_0000003.png").exists() and result.sample_path.name == "step_0000006.png"
    grid = tf.io.decode_png((tmp_path / "samples/latest.png").read_bytes())
    assert grid.shape == (32 * 1, 32 * 3, 3)  # the val split has one pair: input | output | target
    events = list((tmp_path / "logs/train").glob("events.out.tfevents.*"))
    tags = set()
    for event in tf.compat.v1.train.summary_iterator(str(events[0])):
        tags |= {v.tag for v in event.summary.value}
    assert {"g_total", "g_l1", "d_total", "learning_rate", "images_per_second", "input | output | target"} <= tags
    reader = tf.train.load_checkpoint(str(tmp_path / "checkpoints/ckpt-6"))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 6
    assert reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE") == 6 * 2 // 10


def _poison_losses_after(monkeypatch, good_calls):
    """Makes the generator loss NaN from the (good_calls + 1)-th traced call on (eager steps)."""
    real = state_mod.generator_loss
    calls = []

    def poisoned(*args, **kwargs):
        calls.append(1)
        losses = real(*args, **kwargs)
        if len(calls) > good_calls:
            losses = {k: v * float("nan") for k, v in losses.items()}
        return losses

    monkeypatch.setattr(state_mod, "generator_loss", poisoned)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(facades, two_steps, tmp_path, monkeypatch):
    shutil.copytree(two_steps, tmp_path, dirs_exist_ok=True)
    files = {p.name: p.read_bytes() for p in (tmp_path / "checkpoints").iterdir()}
    config_before = (tmp_path / "config.json").read_text()
    _poison_losses_after(monkeypatch, 0)
    longer = resolve_config(tmp_path, Config(), {"train": {"steps": 4, "learning_rate": 0.1}})
    with pytest.raises(NonFiniteLossError, match=r"step 3: g_total = nan.*last good checkpoint is .*ckpt-2"):
        train(longer, facades, tmp_path, run_eagerly=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "checkpoints").iterdir()} == files
    # The failed run's settings (steps 4, lr 0.1) are not left behind for the next rerun.
    assert (tmp_path / "config.json").read_text() == config_before
    assert resolve_config(tmp_path, Config(), {}).train.learning_rate == TINY.train.learning_rate


def test_a_run_failing_before_its_first_checkpoint_writes_no_config(facades, tmp_path, monkeypatch):
    _poison_losses_after(monkeypatch, 0)
    with pytest.raises(NonFiniteLossError, match="none was saved yet"):
        train(TINY, facades, tmp_path, run_eagerly=True)
    assert not (tmp_path / "config.json").exists() and not list((tmp_path / "checkpoints").glob("*.index"))


def _damage(prefix):
    """Overwrites the middle of a checkpoint's data file, keeping its size."""
    data = next(prefix.parent.glob(prefix.name + ".data-*"))
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 4 : len(raw) // 2] = b"\xff" * (len(raw) // 2 - len(raw) // 4)
    data.write_bytes(bytes(raw))


def _truncate(prefix):
    data = next(prefix.parent.glob(prefix.name + ".data-*"))
    data.write_bytes(data.read_bytes()[:100])


def test_unreadable_newest_checkpoint_falls_back_to_an_older_one(facades, four_steps, tmp_path, capsys):
    from pix2pix_tf.inference import load_generator

    shutil.copytree(four_steps, tmp_path, dirs_exist_ok=True)
    _truncate(tmp_path / "checkpoints/ckpt-4")
    generator, _, step = load_generator(tmp_path)
    assert step == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "warning: skipped the unreadable checkpoint ckpt-4 (IndexError: Read less bytes than requested); "
        f"restored {tmp_path / 'checkpoints/ckpt-2'}"
    ]
    more = train(resolve_config(tmp_path, Config(), {"train": {"steps": 6}}), facades, tmp_path)
    assert (more.start_step, more.step) == (2, 6)
    captured = capsys.readouterr()
    assert "skipped the unreadable checkpoint ckpt-4" in captured.err and "resuming from step 2" in captured.out
    # The run went on past the damaged file: step 4 was saved again, readable this time.
    assert load_generator(tmp_path)[2] == 6


def test_damaged_bytes_are_caught_too(four_steps, tmp_path, capsys):
    from pix2pix_tf.checkpoints import restore_newest_readable

    shutil.copytree(four_steps, tmp_path, dirs_exist_ok=True)
    _damage(tmp_path / "checkpoints/ckpt-4")
    model = Pix2Pix(TINY.replace(train={"steps": 4}), SCHEDULE)
    assert restore_newest_readable(model.checkpoint, tmp_path / "checkpoints").endswith("ckpt-2")
    assert int(model.step) == 2


def test_no_readable_checkpoint_is_one_clear_error(facades, two_steps, tmp_path):
    shutil.copytree(two_steps, tmp_path, dirs_exist_ok=True)
    _truncate(tmp_path / "checkpoints/ckpt-2")
    with pytest.raises(Pix2PixError, match=r"checkpoints: no readable checkpoint; 1 damaged, the newest ckpt-2 \("):
        train(TINY.replace(train={"steps": 4}), facades, tmp_path)


@pytest.fixture
def small_disk(tmp_path):
    """A 10 MB tmpfs (needs root); skipped where mounting is not allowed, except in CI, which runs as root."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=10m", "tmpfs", str(mount)], capture_output=True)
    if result.returncode:
        why = f"cannot mount a tmpfs here: {result.stderr.decode().strip()}"
        if os.environ.get("CI"):
            pytest.fail(f"{why}; CI runs the tests as root so that the full-disk test runs")
        pytest.skip(why)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_while_saving_is_one_line_and_keeps_the_last_good_checkpoint(facades, small_disk, tmp_path):
    # Each TINY checkpoint (weights and Adam slots) is 3.6 MB: the third does not fit in 10 MB.
    config = TINY.replace(train={"steps": 8, "checkpoint_every": 2, "keep_checkpoints": 5, "sample_every": 100})
    work = small_disk / "work"
    with pytest.raises(
        Pix2PixError, match=r"no space left on device in .*work at step \d+ .*last good checkpoint is .*ckpt-\d"
    ) as e:
        train(config, facades, work)
    assert len(str(e.value).splitlines()) == 1 and "{{" not in str(e.value)
    last_good = str(e.value).split("last good checkpoint is ")[1].split(":")[0]
    assert not list((work / "checkpoints").glob("*_temp*"))  # partial files removed
    import shutil

    shutil.copytree(work, tmp_path / "moved")  # the user frees space: the run resumes from its last good step
    resumed = train(resolve_config(tmp_path / "moved", Config(), {}), facades, tmp_path / "moved")
    assert resumed.start_step == int(last_good.rsplit("-", 1)[1]) and resumed.step == 8


def test_disk_full_while_writing_a_sample_is_one_line(facades, tmp_path, monkeypatch):
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "samples/step_0000003.png"))

    monkeypatch.setattr(jobs_mod, "_save_sample", full)
    with pytest.raises(
        Pix2PixError, match=r"no space left on device in .* at step 3 .*No checkpoint was saved yet: free some space"
    ):
        train(TINY, facades, tmp_path)


def test_resume_with_a_different_model_is_refused(two_steps, tmp_path):
    shutil.copytree(two_steps, tmp_path, dirs_exist_ok=True)
    with pytest.raises(Pix2PixError, match=r"model.norm: trained with 'batch', asked for 'instance'"):
        resolve_config(tmp_path, Config(), {"model": {"norm": "instance"}})
    # Rerunning needs no flags repeated: the saved config is the base.
    assert resolve_config(tmp_path, Config(), {}).model.ngf == 8


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])
def test_ctrl_c_saves_and_exits_cleanly(facades, tmp_path, sent):
    # SIGTERM is how Kubernetes, schedulers and `kill` stop a job: treated as Ctrl-C.
    cmd = [
        sys.executable,
        "-m",
        "pix2pix_tf",
        "train",
        "--data",
        str(facades),
        "--workdir",
        str(tmp_path),
        "--image-size",
        "32",
        "--ngf",
        "8",
        "--ndf",
        "8",
        "--steps",
        "100000",
        "--log-every",
        "1",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    # A guard against a hung child, not a timing check: it only kills a process that never gets to step 5.
    watchdog = threading.Timer(600, proc.kill)
    watchdog.start()
    try:
        for line in proc.stdout:
            if line.startswith("step 5/"):
                proc.send_signal(sent)
                break
        out, err = proc.communicate(timeout=600)
    finally:
        watchdog.cancel()
    assert proc.returncode == 130, err  # what shells report for Ctrl-C, so scripts can tell
    assert "interrupted: saved step" in out and "Traceback" not in err
    step = int(out.split("interrupted: saved step ")[1].split()[0])
    assert (tmp_path / f"checkpoints/ckpt-{step}.index").exists()


def _record_calls(monkeypatch):
    """The `n` of every train_steps call the next `train` makes."""
    sizes = []

    class Recording(startup_mod.Pix2Pix):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            run = self.train_steps

            def recorded(iterator, n):
                sizes.append(int(n))
                return run(iterator, n)

            self.train_steps = recorded

    monkeypatch.setattr(startup_mod, "Pix2Pix", Recording)
    return sizes


def test_several_steps_per_call_train_exactly_as_one_per_call(facades, tmp_path, monkeypatch):
    quiet = {"log_every": 100, "sample_every": 100, "checkpoint_every": 100, "steps": 6}
    train(TINY.replace(train={**quiet, "steps_per_call": 1}), facades, tmp_path / "one")
    sizes = _record_calls(monkeypatch)
    train(TINY.replace(train={**quiet, "steps_per_call": 4}), facades, tmp_path / "four")
    assert sizes == [4, 2]  # the last call stops at the end of the run
    a = tf.train.load_checkpoint(str(tmp_path / "one/checkpoints/ckpt-6"))
    b = tf.train.load_checkpoint(str(tmp_path / "four/checkpoints/ckpt-6"))
    for name, _ in tf.train.list_variables(str(tmp_path / "one/checkpoints/ckpt-6")):
        if name not in ("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter/.ATTRIBUTES/VARIABLE_VALUE"):
            np.testing.assert_allclose(a.get_tensor(name), b.get_tensor(name), rtol=1e-5, atol=1e-6, err_msg=name)


def test_calls_are_sized_to_the_machine_and_stop_at_every_event(facades, tmp_path, monkeypatch):
    sizes = _record_calls(monkeypatch)
    FakeClock(per_step=0.01).install(monkeypatch)
    config = TINY.replace(
        train={"steps": 40, "log_every": 100, "sample_every": 100, "checkpoint_every": 15, "keep_checkpoints": 5}
    )
    result = train(config, facades, tmp_path)
    assert result.step == 40 and sum(sizes) == 40
    assert sizes[:2] == [1, 1]  # traced, then timed
    # 10 ms steps: calls of 0.2 s / 10 ms = 20 steps, cut at the checkpoints (15, 30) and the end.
    assert sizes == [1, 1, 13, 15, 10]
    checkpoints = sorted(int(p.stem.split("-")[1]) for p in (tmp_path / "checkpoints").glob("ckpt-*.index"))
    assert checkpoints == [15, 30, 40]


def test_pacer_sizes_each_call_from_the_last_and_times_steps_without_writing():
    now = [0.0]
    pacer = pacing.Pacer(clock=lambda: now[0])
    assert pacer.seconds_per_step(0) is None

    def call(n, seconds, step):
        pacer.call_started()
        now[0] += seconds
        pacer.call_done(n, step)

    call(1, 30.0, 1)  # the first call traces: it sizes nothing and is not timed
    assert pacer.per_call == 1 and pacer.seconds_per_step(1) is None
    call(1, 0.01, 2)
    assert pacer.per_call == 20  # 0.2 s / 10 ms
    with pacer.writing():  # between calls: inside the timed span, left out
        now[0] += 7.0
    call(20, 0.1, 22)
    assert pacer.per_call == 40  # 5 ms a step
    call(40, 0.04, 62)
    assert pacer.per_call == pacing.MAX_STEPS_PER_CALL  # 1 ms a step would make 200
    call(100, 50.0, 162)
    assert pacer.per_call == 1  # 0.5 s a step: never less than one
    speed = (0.01 + 0.1 + 0.04 + 50.0) / 161
    assert pacer.seconds_per_step(162) == pytest.approx(speed)
    with pacer.writing():  # after the last call: outside the timed span already
        now[0] += 3.0
    assert pacer.seconds_per_step(162) == pytest.approx(speed)
    fixed = pacing.Pacer(steps_per_call=4, clock=lambda: now[0])
    for step in (4, 8):
        fixed.call_started()
        now[0] += 0.001
        fixed.call_done(4, step)
    assert fixed.per_call == 4


def test_a_nan_inside_a_multi_step_call_names_the_steps(facades, tmp_path, monkeypatch):
    _poison_losses_after(monkeypatch, 0)  # the step is traced once: every step of the 4-step call is NaN
    config = TINY.replace(train={"steps": 8, "log_every": 100, "sample_every": 100, "steps_per_call": 4})
    with pytest.raises(NonFiniteLossError, match=r"steps 1-4: .*none was saved yet"):
        train(config, facades, tmp_path)


def test_seconds_per_step_leaves_out_only_writing_inside_the_timed_calls(facades, tmp_path, monkeypatch):
    # A slow sample write after the last call lies outside the timed span: subtracting
    # it made the speed the demo plans its budget with too fast, even negative.
    clock = FakeClock(per_step=0.25, first_call=5.0).install(monkeypatch)
    real = jobs_mod._save_sample

    def slow(*args, **kwargs):
        clock.advance(100.0)
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs_mod, "_save_sample", slow)
    config = TINY.replace(train={"steps": 6, "sample_every": 3, "log_every": 100, "steps_per_call": 1})
    result = train(config, facades, tmp_path)  # samples at step 3 (inside the timed span) and at the end
    # Steps 2-6 took 0.25 s each; the first call (5 s, tracing) and both 100 s writes are left out.
    assert result.seconds_per_step == pytest.approx(0.25)


def test_the_first_call_keeps_tensorflows_graph_notes_off_stderr_with_onednn_on(facades, tmp_path):
    # With oneDNN on (the default on some x86 CPUs) TensorFlow's remapper logs "E0000 ...
    # remapper failed: ... Mutation::Apply error" while optimising an unconditional D's step:
    # a note that reads like a bug in a notebook. Set at import, so it takes a process of its own.
    script = f"""
from pix2pix_tf.config import Config
from pix2pix_tf.train import train
config = Config.from_dict({TINY.to_dict()!r}).replace(
    model={{"conditional": False, "d_receptive_field": 16}}, train={{"steps": 3}})
train(config, {str(facades)!r}, {str(tmp_path / "work")!r}, progress=False)
"""
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "0"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "oneDNN custom operations are on" in proc.stderr  # the condition held (TensorFlow's import line)
    assert "remapper failed" not in proc.stderr and "meta_optimizer" not in proc.stderr, proc.stderr
