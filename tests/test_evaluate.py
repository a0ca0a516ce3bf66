import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import write_image

from pix2pix_tf.cli import main
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.evaluate import image_metrics, input_files, predict, to_uint8, translate_file


def test_metrics_closed_forms():
    a = np.zeros((16, 16, 3), np.uint8)
    b = np.full((16, 16, 3), 51, np.uint8)
    m = image_metrics(a, b)
    assert m["l1"] == pytest.approx(51 / 255)
    assert m["psnr"] == pytest.approx(20 * np.log10(255 / 51), rel=1e-4)
    assert image_metrics(b, b)["ssim"] == pytest.approx(1.0)


def test_to_uint8_rounds():
    np.testing.assert_array_equal(to_uint8([-1.0, 0.0, 1.0, 2.0]), [0, 128, 255, 255])


def test_predict_brings_any_size_back(tmp_path):
    write_image(tmp_path / "in/wide.png", np.full((30, 70, 3), 200))
    write_image(tmp_path / "in/gray.jpg", np.full((41, 17), 10))
    seen = []

    def invert(x):
        seen.append(tuple(x.shape))
        return -x

    written = predict(invert, 32, 3, tmp_path / "in", tmp_path / "out")
    assert [p.name for p in written] == ["gray.png", "wide.png"]
    assert seen == [(1, 32, 32, 3)] * 2
    wide = tf.io.decode_png((tmp_path / "out/wide.png").read_bytes()).numpy()
    assert wide.shape == (30, 70, 3) and abs(int(wide.mean()) - 55) <= 1
    assert tf.io.decode_png((tmp_path / "out/gray.png").read_bytes()).shape == (41, 17, 3)


def test_predict_errors(tmp_path):
    with pytest.raises(Pix2PixError, match="no such file or folder"):
        input_files(tmp_path / "nope.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(Pix2PixError, match="no images"):
        input_files(tmp_path / "empty")
    (tmp_path / "bad.png").write_bytes(b"junk")
    with pytest.raises(Pix2PixError, match="bad.png: not a readable"):
        translate_file(lambda x: x, tmp_path / "bad.png", 32, 3)


def test_predict_never_writes_over_its_inputs_or_a_file(tmp_path):
    write_image(tmp_path / "in/x.png", np.full((8, 8, 3), 7))
    before = (tmp_path / "in/x.png").read_bytes()
    with pytest.raises(Pix2PixError, match="is the input folder; write the translations to another folder"):
        predict(lambda x: -x, 32, 3, tmp_path / "in", tmp_path / "in")
    assert (tmp_path / "in/x.png").read_bytes() == before
    (tmp_path / "out.png").write_bytes(b"mine")
    with pytest.raises(Pix2PixError, match="out.png: is a file; --output takes the folder"):
        predict(lambda x: -x, 32, 3, tmp_path / "in", tmp_path / "out.png")
    assert (tmp_path / "out.png").read_bytes() == b"mine"


def test_a_full_disk_while_predicting_names_the_file_and_leaves_no_partial_png(tmp_path, monkeypatch):
    import errno

    write_image(tmp_path / "in/x.png", np.full((8, 8, 3), 7))
    real_write = Path.write_bytes

    def full(self, data):
        real_write(self, data[: len(data) // 2])  # part of the file reaches the disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(Pix2PixError, match=r"out/x\.png: no space left on device while writing the translation of"):
        predict(lambda x: -x, 32, 3, tmp_path / "in", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_evaluate_writes_its_page_whole_and_only_over_its_own(tmp_path):
    from pix2pix_tf.config import Config
    from pix2pix_tf.data.synthetic import synthesize
    from pix2pix_tf.evaluate import evaluate
    from pix2pix_tf.models import build_generator

    synthesize("facades", tmp_path / "d", count=3, size=32)
    config = Config().replace(data={"image_size": 32})
    g = build_generator(32, ngf=8)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/notes.txt").write_text("keep")
    with pytest.raises(Pix2PixError, match="mine: folder is not empty and was not written by pix2pix-tf evaluate"):
        evaluate(g, config, tmp_path / "d", "test", tmp_path / "mine")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    evaluate(g, config, tmp_path / "d", "test", tmp_path / "ev")
    (tmp_path / "ev/images/stale.png").write_bytes(b"x")
    evaluate(g, config, tmp_path / "d", "test", tmp_path / "ev")  # its own folder: replaced whole
    assert sorted(p.name for p in (tmp_path / "ev/images").iterdir()) == ["1_input.png", "1_output.png", "1_target.png"]


def test_cli_end_to_end_at_32_px(tmp_path, capsys):
    data, work = str(tmp_path / "data"), str(tmp_path / "work")
    assert main(["data", "synth", "facades", "--out", data, "--count", "10", "--size", "32"]) == 0
    assert (
        main(
            [
                "train",
                "--data",
                data,
                "--workdir",
                work,
                "--image-size",
                "32",
                "--ngf",
                "8",
                "--ndf",
                "8",
                "--steps",
                "4",
                "--direction",
                "BtoA",
                "--batch-size",
                "2",
            ]
        )
        == 0
    )
    # Nothing repeated: predict and evaluate read config.json from the work dir.
    assert main(["predict", "--workdir", work, "--input", f"{data}/test", "--output", str(tmp_path / "pred")]) == 0
    assert (tmp_path / "pred/1.png").exists()
    assert main(["evaluate", "--workdir", work, "--data", data]) == 0
    metrics = json.loads((tmp_path / "work/eval/test_step4/metrics.json").read_text())
    assert metrics["count"] == 1 and set(metrics["mean"]) == {"l1", "psnr", "ssim"}
    assert metrics["images"][0]["name"] == "1"
    page = (tmp_path / "work/eval/test_step4/index.html").read_text()
    assert 'src="images/1_output.png"' in page and (tmp_path / "work/eval/test_step4/images/1_target.png").exists()


def test_cli_reload_errors(tmp_path, capsys):
    assert main(["predict", "--workdir", str(tmp_path), "--input", "x", "--output", "y"]) == 2
    assert "config.json not found" in capsys.readouterr().err


def test_predict_one_half_of_ab_images(tmp_path):
    left, right = np.zeros((20, 30, 3)), np.full((20, 30, 3), 255)
    write_image(tmp_path / "ab.png", np.concatenate([left, right], axis=1))
    for half, value in (("left", 0), ("right", 255)):
        out = translate_file(lambda x: x, tmp_path / "ab.png", 32, 3, half)
        assert out.shape == (20, 30, 3) and np.abs(out.astype(int) - value).max() <= 1
