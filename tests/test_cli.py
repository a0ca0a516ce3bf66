import errno
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pix2pix_tf.cli import main


def test_data_synth_and_show(tmp_path, capsys):
    assert main(["data", "synth", "edges2shapes", "--out", str(tmp_path / "d"), "--count", "6", "--size", "32"]) == 0
    grid = tmp_path / "new/folder/grid.png"  # a missing output folder is created
    argv = ["data", "show", str(tmp_path / "d"), "--out", str(grid), "--image-size", "32", "--count", "3"]
    assert main(argv) == 0
    image = np.asarray(Image.open(grid).convert("RGB"))
    # figsize (5, 2.5 * count) inches at 80 dpi: one row per pair.
    assert image.shape == (3 * 200, 400, 3)
    # Each row shows an edge drawing (mostly white, thin dark lines) beside a shaded photo:
    # the left panels are brighter than the right ones in every row.
    for row in np.split(image, 3, axis=0):
        left, right = row[30:-20, 20:190].mean(), row[30:-20, 210:380].mean()
        assert left > right + 10, (left, right)


def test_data_combine(tmp_path):
    from conftest import write_image

    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, (8, 6, 3)), rng.integers(0, 256, (8, 6, 3))
    write_image(tmp_path / "A/train/1.png", a)
    write_image(tmp_path / "B/train/1.png", b)
    argv = ["data", "combine", "--a", str(tmp_path / "A"), "--b", str(tmp_path / "B"), "--out", str(tmp_path / "AB")]
    assert main(argv) == 0
    combined = np.asarray(Image.open(tmp_path / "AB/train/1.png"))
    np.testing.assert_array_equal(combined, np.concatenate([a, b], axis=1))  # A left, B right, lossless


def _run_cli(*argv, env=None):
    """The CLI in a real process: the exit code and stderr are what a user sees."""
    return subprocess.run(
        [sys.executable, "-m", "pix2pix_tf", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    "flag,value,message",
    [
        ("--dropout", "1.5", r"dropout must be a number in \[0, 1\); got 1.5"),
        ("--ngf", "0", "ngf must be a whole number >= 1; got 0"),
        ("--lr", "-1", r"learning_rate must be a number in \(0, inf\); got -1.0"),
    ],
)
def test_out_of_range_train_options_are_one_line(tmp_path, capsys, flag, value, message):
    code = main(["train", "--data", str(tmp_path), "--workdir", str(tmp_path / "w"), flag, value])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert re.fullmatch(f"error: {message}", err.strip())
    assert not (tmp_path / "w").exists()


def test_data_show_count_and_out_are_checked(tmp_path, capsys):
    synth = ["data", "synth", "facades", "--out", str(tmp_path / "d"), "--count", "3", "--size", "32"]
    assert main(synth) == 0
    show = ["data", "show", str(tmp_path / "d"), "--image-size", "32"]
    assert main([*show, "--count", "0", "--out", str(tmp_path / "g.png")]) == 2
    assert "error: count must be a whole number >= 1; got 0" in capsys.readouterr().err
    assert main([*show, "--out", str(tmp_path)]) == 2
    assert "is a folder; --out takes the image file to write" in capsys.readouterr().err
    assert main([*show, "--out", str(tmp_path / "g.txt")]) == 2
    assert "--out must end in .png" in capsys.readouterr().err


def test_unexpected_errors_are_one_line_unless_debugging(tmp_path, monkeypatch, capsys):
    from pix2pix_tf.data import synthetic

    def broken(*args, **kwargs):
        raise ValueError("something deep broke\nsecond line")

    monkeypatch.setattr(synthetic, "synthesize", broken)
    argv = ["data", "synth", "facades", "--out", str(tmp_path / "d")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: unexpected ValueError: something deep broke (rerun with --debug, or PIX2PIX_DEBUG=1, "
        "for the traceback; please report it)"
    ]
    with pytest.raises(ValueError, match="something deep broke"):
        main(["--debug", *argv])
    with pytest.raises(ValueError, match="something deep broke"):
        main([*argv, "--debug"])  # where a user adds it after reading the hint
    monkeypatch.setenv("PIX2PIX_DEBUG", "1")
    with pytest.raises(ValueError):
        main(argv)


def test_disk_full_anywhere_is_one_line(tmp_path, monkeypatch, capsys):
    from pix2pix_tf.data import synthetic

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "d/train/1.jpg"))

    monkeypatch.setattr(synthetic, "synthesize", full)
    assert main(["data", "synth", "facades", "--out", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: no space left on device writing {tmp_path / 'd/train/1.jpg'}")


def test_evaluate_with_a_config_that_does_not_match_the_checkpoint(tmp_path):
    import json

    data = tmp_path / "d"
    assert main(["data", "synth", "facades", "--out", str(data), "--count", "6", "--size", "32"]) == 0
    work = tmp_path / "w"
    train = ["train", "--data", str(data), "--workdir", str(work), "--image-size", "32", "--ngf", "8", "--ndf", "8"]
    assert main([*train, "--steps", "1"]) == 0
    config = json.loads((work / "config.json").read_text())
    config["model"]["ngf"] = 16  # edited by hand after training
    (work / "config.json").write_text(json.dumps(config))
    # A real process: TensorFlow's warnings about unrestored values come at exit.
    result = _run_cli("evaluate", "--workdir", str(work), "--data", str(data))
    assert result.returncode == 2
    err = result.stderr.strip().splitlines()
    assert len(err) == 1, result.stderr[:2000]
    assert err[0].startswith(f"error: {work / 'checkpoints/ckpt-1'} does not fit the model that ")
    assert "shape (4, 4, 3, 8) when attempting to restore variable with shape (4, 4, 3, 16)" in err[0]


def test_errors_are_one_line_without_traceback(tmp_path):
    result = _run_cli("data", "show", str(tmp_path / "missing"), "--out", str(tmp_path / "g.png"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing'}: dataset directory not found"]


def test_corrupt_file_error_has_no_tensorflow_noise(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train/broken.jpg").write_bytes(b"junk")
    result = _run_cli("data", "show", str(tmp_path), "--out", str(tmp_path / "g.png"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"error: 1 bad file(s) in {tmp_path / 'train'}:"
    assert "broken.jpg: not a readable JPEG/PNG/BMP/GIF image" in lines[1]
    assert "Traceback" not in result.stderr and "rendezvous" not in result.stderr


def test_debug_env_shows_the_traceback_in_a_real_process(tmp_path):
    (tmp_path / "train").mkdir()
    result = _run_cli("data", "show", str(tmp_path), "--out", str(tmp_path / "g.png"), env={"PIX2PIX_DEBUG": "1"})
    assert result.returncode != 0 and "Traceback" in result.stderr and "no images" in result.stderr
