import json

import pytest
from helpers import FakeClock

from pix2pix_tf import demo as demo_mod
from pix2pix_tf.demo import CALIBRATION_STEPS, DEMO_CONFIG, run_demo
from pix2pix_tf.train import train


def test_demo_trains_evaluates_and_reports(tmp_path, capsys):
    # A fixed length, so the outcome does not depend on the machine's speed or load.
    summary = run_demo(tmp_path, minutes=30, steps=80)
    out = capsys.readouterr().out
    assert summary["steps"] == 80
    assert (tmp_path / "data/train").is_dir() and (tmp_path / "run/config.json").exists()
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == summary["steps"]
    assert json.loads((tmp_path / "run/config.json").read_text())["train"]["steps"] == summary["steps"]
    eval_dir = tmp_path / f"run/eval/test_step{summary['steps']}"
    assert (eval_dir / "index.html").exists() and (tmp_path / "eval_step0/metrics.json").exists()
    assert (tmp_path / "export/saved_model/saved_model.pb").exists()
    assert (tmp_path / "export/generator_float16.tflite").exists()
    # The model card carries the evaluation of the exported step, the figures the demo printed.
    card = json.loads((tmp_path / "export/saved_model/assets/model_card.json").read_text())
    assert card["steps_trained"] == summary["steps"]
    assert card["evaluation"]["ssim"] == pytest.approx(summary["trained"]["ssim"])
    for key in ("sample grid", "tensorboard", "results page", "exported models"):
        assert f"  {key}: " in out
    assert f"  serve it: pix2pix-tf serve {tmp_path / 'export'}" in out
    assert summary["trained"]["ssim"] > summary["step0"]["ssim"] + 0.1


def test_time_budget_stops_training_with_a_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_mod, "export", lambda *args, **kwargs: None)
    FakeClock(per_step=0.25).install(monkeypatch)
    summary = run_demo(tmp_path, minutes=0.01, steps=100_000)  # 0.6 s: stopped long before
    assert 0 < summary["steps"] < 1000
    assert summary["steps"] == 3  # the first call to end at or after 0.6 s: 3 steps of 0.25 s
    assert (tmp_path / f"run/checkpoints/ckpt-{summary['steps']}.index").exists()


def test_rerun_after_a_stop_during_calibration_recalibrates(tmp_path, monkeypatch):
    # A demo stopped right after its speed probe leaves a run at step 30 whose config
    # says steps = 30; the rerun's probe then trained nothing and the demo divided by
    # its missing speed (TypeError).
    from pix2pix_tf.data.synthetic import synthesize

    synthesize("facades", tmp_path / "data", count=12, size=64)
    train(DEMO_CONFIG.replace(train={"steps": CALIBRATION_STEPS}), tmp_path / "data", tmp_path / "run")
    monkeypatch.setattr(demo_mod, "export", lambda *args, **kwargs: None)
    # The budget ends during the new probe's first call (it traces: 1 s of a 0.6 s budget).
    FakeClock(per_step=0.01, first_call=1.0).install(monkeypatch)
    summary = run_demo(tmp_path, minutes=0.01)
    assert CALIBRATION_STEPS < summary["steps"] <= 2 * CALIBRATION_STEPS
    assert summary["steps"] == CALIBRATION_STEPS + 1
    # The length is now fixed: a rerun trains nothing more, whatever its budget.
    assert json.loads((tmp_path / "demo.json").read_text())["steps"] == summary["steps"]
    assert run_demo(tmp_path, minutes=1)["steps"] == summary["steps"]


def test_the_speed_probe_trains_at_the_rate_of_the_real_schedule(tmp_path, monkeypatch):
    # The probe's steps are the run's first; on a schedule of their own (30 steps, the
    # last 15 decaying) they ended at a learning rate of zero.
    from pix2pix_tf.data.synthetic import synthesize

    synthesize("facades", tmp_path / "data", count=12, size=64)
    monkeypatch.setattr(demo_mod, "CALIBRATION_STEPS", 4)
    real_train = demo_mod.train
    calls = []

    class Stop(Exception):
        pass

    def recorded(config, *args, **kwargs):
        calls.append(config)
        if len(calls) > 1:
            raise Stop  # the real run: its schedule is all this test needs
        result = real_train(config, *args, run_eagerly=True, **kwargs)
        calls.append(result)
        return result

    monkeypatch.setattr(demo_mod, "train", recorded)
    with pytest.raises(Stop):
        run_demo(tmp_path, minutes=30)
    probe_config, probe, real_config = calls
    assert probe.step == 4
    assert probe.losses["learning_rate"] == pytest.approx(DEMO_CONFIG.train.learning_rate)  # the 4th step's
    assert real_config.train.decay_steps is None  # the demo's schedule: half the run decaying
    # A rerun after the probe (its config.json says no decay) keeps the demo's schedule.
    calls.clear()
    calls.append(None)
    with pytest.raises(Stop):
        run_demo(tmp_path, minutes=30)
    assert calls[-1].train.decay_steps is None


def test_ctrl_c_stops_the_demo_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    from pix2pix_tf.data.synthetic import synthesize

    synthesize("facades", tmp_path / "data", count=12, size=64)
    real_train = demo_mod.train

    def interrupted_train(*args, **kwargs):
        result = real_train(*args, **kwargs)
        result.interrupted = True
        return result

    exported = []
    monkeypatch.setattr(demo_mod, "train", interrupted_train)
    monkeypatch.setattr(demo_mod, "export", lambda *args, **kwargs: exported.append(1))
    monkeypatch.setattr(demo_mod, "CALIBRATION_STEPS", 2)
    with pytest.raises(KeyboardInterrupt):
        run_demo(tmp_path, minutes=1)
    assert not exported and not (tmp_path / "summary.json").exists()
    assert (tmp_path / "run/checkpoints/ckpt-2.index").exists()


def test_bad_budget_is_refused(tmp_path):
    from pix2pix_tf.errors import Pix2PixError

    with pytest.raises(Pix2PixError, match="--minutes must be a positive number"):
        run_demo(tmp_path, minutes=0)
