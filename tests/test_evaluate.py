import json

import numpy as np
import pytest

from pix2pix_tf.cli import main
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.evaluate import image_metrics, to_uint8


def test_metrics_closed_forms():
    a = np.zeros((16, 16, 3), np.uint8)
    b = np.full((16, 16, 3), 51, np.uint8)
    m = image_metrics(a, b)
    assert m["l1"] == pytest.approx(51 / 255)
    assert m["psnr"] == pytest.approx(20 * np.log10(255 / 51), rel=1e-4)
    assert image_metrics(b, b)["ssim"] == pytest.approx(1.0)


def test_to_uint8_rounds():
    np.testing.assert_array_equal(to_uint8([-1.0, 0.0, 1.0, 2.0]), [0, 128, 255, 255])


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


def test_stochastic_scores_each_image_on_its_own(tmp_path):
    from conftest import write_image

    from pix2pix_tf.config import Config
    from pix2pix_tf.evaluate import evaluate
    from pix2pix_tf.models import build_generator, generate

    # Dropout 0 leaves batch statistics as the stochastic mode's only difference from
    # the deterministic one: an image's output then depends on its batch, and nothing else.
    config = Config().replace(data={"image_size": 32}, model={"ngf": 8, "dropout": 0.0})
    g = build_generator(32, ngf=8, dropout=0.0, seed=0)
    rng = np.random.default_rng(0)
    pairs = {name: rng.integers(0, 256, (32, 64, 3), dtype=np.uint8) for name in ("same", "x", "y")}
    for data, neighbour in (("dx", "x"), ("dy", "y")):
        write_image(tmp_path / data / "test/same.png", pairs["same"])
        write_image(tmp_path / data / f"test/{neighbour}.png", pairs[neighbour])
    scores = {
        data: {r["name"]: r for r in evaluate(g, config, tmp_path / data, "test", stochastic=True)["images"]}
        for data in ("dx", "dy")
    }
    assert scores["dx"]["same"] == scores["dy"]["same"]
    # ... and it is the image's translation alone, as predict --stochastic makes it.
    source, target = (
        pairs["same"][:, half].astype(np.float32)[None] / 127.5 - 1 for half in (slice(32), slice(32, 64))
    )
    alone = to_uint8(generate(g, source, stochastic=True)).numpy()[0]
    assert scores["dx"]["same"] == {"name": "same", **image_metrics(alone, to_uint8(target).numpy()[0])}


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
    assert "not a model: expected a work dir (config.json + checkpoints/)" in capsys.readouterr().err
