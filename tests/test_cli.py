import subprocess
import sys

from PIL import Image

from pix2pix_tf.cli import main


def test_data_synth_and_show(tmp_path, capsys):
    assert main(["data", "synth", "edges2shapes", "--out", str(tmp_path / "d"), "--count", "6", "--size", "32"]) == 0
    assert (
        main(
            [
                "data",
                "show",
                str(tmp_path / "d"),
                "--out",
                str(tmp_path / "grid.png"),
                "--image-size",
                "32",
                "--count",
                "2",
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "grid.png").size[0] > 100


def test_data_combine(tmp_path):
    from conftest import write_image

    write_image(tmp_path / "A/train/1.png", [[[0, 0, 0]]])
    write_image(tmp_path / "B/train/1.png", [[[9, 9, 9]]])
    assert (
        main(["data", "combine", "--a", str(tmp_path / "A"), "--b", str(tmp_path / "B"), "--out", str(tmp_path / "AB")])
        == 0
    )
    assert (tmp_path / "AB/train/1.png").exists()


def test_errors_are_one_line_without_traceback(tmp_path):
    # A real process: the exit code and stderr are what a user sees.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pix2pix_tf",
            "data",
            "show",
            str(tmp_path / "missing"),
            "--out",
            str(tmp_path / "g.png"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing'}: dataset directory not found"]


def test_corrupt_file_error_has_no_tensorflow_noise(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train/broken.jpg").write_bytes(b"junk")
    result = subprocess.run(
        [sys.executable, "-m", "pix2pix_tf", "data", "show", str(tmp_path), "--out", str(tmp_path / "g.png")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"error: 1 bad file(s) in {tmp_path / 'train'}:"
    assert "broken.jpg: not a readable JPEG/PNG/BMP/GIF image" in lines[1]
    assert "Traceback" not in result.stderr and "rendezvous" not in result.stderr
