import json

from pix2pix_tf.demo import run_demo


def test_demo_trains_evaluates_and_reports(tmp_path, capsys):
    # A 6-second budget: the 30 calibration steps, then whatever fits.
    summary = run_demo(tmp_path, minutes=0.1)
    out = capsys.readouterr().out
    assert summary["steps"] >= 30
    assert (tmp_path / "data/train").is_dir() and (tmp_path / "run/config.json").exists()
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == summary["steps"]
    assert (tmp_path / "eval/index.html").exists() and (tmp_path / "eval_step0/metrics.json").exists()
    assert (tmp_path / "export/saved_model/saved_model.pb").exists()
    assert (tmp_path / "export/generator_float16.tflite").exists()
    for key in ("sample grid", "tensorboard", "results page", "exported models"):
        assert f"  {key}: " in out
    # Even a few dozen steps beat the untrained network on structure.
    assert summary["trained"]["ssim"] > summary["step0"]["ssim"]
