import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import write_image

from pix2pix_tf import export as export_mod
from pix2pix_tf.cli import main
from pix2pix_tf.config import Config, DataConfig, ModelConfig, TrainConfig
from pix2pix_tf.data.synthetic import synthesize
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.evaluate import load_generator, to_uint8, translate_file
from pix2pix_tf.export import AGREEMENT_GATES, TFLiteRunner, export, load_runner, psnr
from pix2pix_tf.train import train

TINY = Config(
    data=DataConfig(image_size=32, batch_size=2, direction="BtoA"),
    model=ModelConfig(ngf=8, ndf=8),
    train=TrainConfig(steps=20, sample_every=100, log_every=100),
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    synthesize("facades", root / "data", count=20, size=32)
    train(TINY, root / "data", root / "work")
    return root


@pytest.fixture(scope="module")
def exported(trained):
    report = export(trained / "work", trained / "exp", stochastic=True)
    return trained / "exp", report


@pytest.fixture(scope="module")
def keras_generator(trained):
    return load_generator(trained / "work")[0]


def _inputs(n=3, seed=0):
    return tf.random.stateless_uniform((n, 32, 32, 3), (seed, 1), -1, 1)


def test_export_layout_and_report(exported):
    out, report = exported
    names = {p.name for p in out.iterdir()}
    assert {"saved_model", "config.json", "model_card.json", "report.md", "report.json"} <= names
    assert {f"generator_{v}.tflite" for v in ("float32", "float16", "int8", "dynamic")} <= names
    assert (out / "saved_model/assets/config.json").exists()
    card = json.loads((out / "saved_model/assets/model_card.json").read_text())
    assert card["input"]["size"] == [32, 32] and card["direction"] == "BtoA" and card["steps_trained"] == 20
    assert json.loads((out / "report.json").read_text())["step"] == 20
    assert "| float16 |" in (out / "report.md").read_text()
    assert export_mod.STOCHASTIC_TFLITE_NOTE in report["notes"]
    assert not list(out.parent.glob(".exp.tmp-*"))


def test_variables_are_stored_once(exported, keras_generator):
    out, report = exported
    params = sum(int(np.prod(v.shape)) for v in keras_generator.weights)
    data = sum(p.stat().st_size for p in (out / "saved_model/variables").glob("*.data-*"))
    # float32 weights + batch-norm statistics + the dropout seeds: 4 bytes each, ~1%
    # of format overhead. A doubled export (keras-team/keras#23553) would be ~8.
    assert 4 * params <= data < 4.1 * params, (data, params)
    assert report["saved_model"]["parameters"] == params


def test_signatures_match_the_keras_model(exported, keras_generator):
    loaded = tf.saved_model.load(str(exported[0] / "saved_model"))
    assert set(loaded.signatures) == {"serving_default", "translate_image", "translate_bytes", "serving_stochastic"}
    x = _inputs()
    expected = keras_generator(x, training=False).numpy()
    got = loaded.signatures["serving_default"](input_image=x)["output_image"].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)

    uint8 = to_uint8(x)
    got = loaded.signatures["translate_image"](image=tf.constant(uint8))["output_image"].numpy()
    reference = to_uint8(keras_generator(tf.cast(uint8, tf.float32) / 127.5 - 1, training=False))
    assert got.dtype == np.uint8 and np.abs(got.astype(int) - reference).max() <= 1

    stochastic = loaded.signatures["serving_stochastic"]
    a, b = (stochastic(input_image=x)["output_image"].numpy() for _ in range(2))
    assert np.abs(a - b).max() > 1e-3  # dropout on
    again = loaded.signatures["serving_default"](input_image=x)["output_image"].numpy()
    np.testing.assert_allclose(again, expected, atol=1e-5)  # statistics untouched by the stochastic calls


def test_translate_bytes_any_format_and_size(exported, keras_generator, tmp_path):
    loaded = tf.saved_model.load(str(exported[0] / "saved_model"))
    rng = np.random.default_rng(0)
    files = [
        write_image(tmp_path / "a.png", rng.integers(0, 256, (45, 70, 3))),
        write_image(tmp_path / "b.jpg", rng.integers(0, 256, (20, 33, 3)), quality=95),
        write_image(tmp_path / "c.bmp", rng.integers(0, 256, (32, 32, 3)), format="BMP"),
    ]
    out = loaded.signatures["translate_bytes"](image_bytes=tf.constant([f.read_bytes() for f in files]))
    assert list(out) == ["output_bytes"]
    for f, png in zip(files, out["output_bytes"].numpy()):
        image = tf.io.decode_png(png).numpy()
        expected = translate_file(lambda x: keras_generator(x, training=False), f, 32, 3)
        assert image.shape == expected.shape
        assert np.abs(image.astype(int) - expected).max() <= 2


def test_tflite_variants_pass_their_agreement_gates(exported, keras_generator):
    out, report = exported
    by_variant = {r["variant"]: r for r in report["tflite"]}
    x = _inputs(4, seed=7).numpy()  # fresh inputs, not the report's
    expected = keras_generator(x, training=False).numpy()
    for variant, gate in AGREEMENT_GATES.items():
        assert by_variant[variant]["shipped"] and by_variant[variant]["psnr_db"] >= gate
        runner = TFLiteRunner(out / f"generator_{variant}.tflite")
        assert list(runner.input["shape"]) == [1, 32, 32, 3] and runner.input["dtype"] == np.float32
        assert psnr(runner(x), expected) >= gate, variant
    sizes = {v: by_variant[v]["bytes"] for v in by_variant}
    assert sizes["int8"] < sizes["float16"] < sizes["float32"]


def test_tflite_has_builtin_ops_only(exported):
    from ai_edge_litert.interpreter import Interpreter

    for variant in ("float32", "int8"):
        interpreter = Interpreter(model_path=str(exported[0] / f"generator_{variant}.tflite"))
        ops = {op["op_name"] for op in interpreter._get_ops_details()}
        assert not any(name.startswith("Flex") or name == "CUSTOM" for name in ops), ops


# The saved_model_cli console script, run through this interpreter so that the test
# does not depend on the scripts folder being on PATH.
SAVED_MODEL_CLI = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]


def test_saved_model_cli_show_and_run(exported, tmp_path):
    sm = str(exported[0] / "saved_model")
    shown = subprocess.run([*SAVED_MODEL_CLI, "show", "--dir", sm, "--all"], capture_output=True, text=True)
    assert shown.returncode == 0
    for name in ("serving_default", "translate_image", "translate_bytes", "serving_stochastic", "output_bytes"):
        assert name in shown.stdout
    np.save(tmp_path / "float.npy", np.zeros((2, 32, 32, 3), np.float32))
    np.save(tmp_path / "uint8.npy", np.zeros((1, 32, 32, 3), np.uint8))
    png = tf.io.encode_png(tf.zeros((10, 14, 3), tf.uint8)).numpy()
    runs = {
        "serving_default": ["--inputs", f"input_image={tmp_path / 'float.npy'}"],
        "serving_stochastic": ["--inputs", f"input_image={tmp_path / 'float.npy'}"],
        "translate_image": ["--inputs", f"image={tmp_path / 'uint8.npy'}"],
        "translate_bytes": ["--input_exprs", f"image_bytes=[{png!r}]"],  # a Python literal
    }
    for signature, inputs in runs.items():
        result = subprocess.run(
            ["saved_model_cli", "run", "--dir", sm, "--tag_set", "serve", "--signature_def", signature, *inputs],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, (signature, result.stderr[-2000:])
        assert "Result for output key output_" in result.stdout, signature


def test_predict_with_each_artefact(exported, trained, tmp_path):
    out = exported[0]
    write_image(tmp_path / "in/x.png", np.random.default_rng(1).integers(0, 256, (40, 50, 3)))
    assert (
        main(
            [
                "predict",
                "--workdir",
                str(trained / "work"),
                "--input",
                str(tmp_path / "in"),
                "--output",
                str(tmp_path / "ref"),
            ]
        )
        == 0
    )
    reference = tf.io.decode_png((tmp_path / "ref/x.png").read_bytes()).numpy().astype(int)
    tolerances = {
        "saved_model": 1,
        ".": 1,
        "generator_float32.tflite": 1,
        "generator_float16.tflite": 2,
        "generator_dynamic.tflite": 8,
        "generator_int8.tflite": 40,
    }
    for artefact, tolerance in tolerances.items():
        target = tmp_path / artefact.replace(".", "_")
        assert (
            main(
                [
                    "predict",
                    "--model",
                    str(out / artefact),
                    "--input",
                    str(tmp_path / "in/x.png"),
                    "--output",
                    str(target),
                ]
            )
            == 0
        )
        image = tf.io.decode_png((target / "x.png").read_bytes()).numpy().astype(int)
        assert image.shape == (40, 50, 3)
        assert np.abs(image - reference).mean() <= tolerance / 4 and np.abs(image - reference).max() <= tolerance * 4


def test_failed_export_leaves_the_previous_one_untouched(exported, trained, monkeypatch):
    out = exported[0]
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def broken(*args, **kwargs):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(export_mod, "_tflite_bytes", broken)
    with pytest.raises(RuntimeError, match="converter crashed"):
        export(trained / "work", out)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert not list(out.parent.glob(".exp.*"))


def test_int8_ships_only_if_it_passes_its_gate(trained, monkeypatch, tmp_path):
    monkeypatch.setitem(export_mod.AGREEMENT_GATES, "int8", 1000.0)
    report = export(trained / "work", tmp_path / "exp", tflite=("float16", "int8"), latency_runs=1)
    int8 = next(r for r in report["tflite"] if r["variant"] == "int8")
    assert not int8["shipped"] and not (tmp_path / "exp/generator_int8.tflite").exists()
    assert (tmp_path / "exp/generator_float16.tflite").exists()
    assert any("int8 was not shipped" in note for note in report["notes"])


def test_bad_requests(trained, tmp_path):
    with pytest.raises(Pix2PixError, match=r"unknown TFLite variant\(s\) \['int4'\]"):
        export(trained / "work", tmp_path / "e", tflite=("int4",))
    with pytest.raises(Pix2PixError, match="not a SavedModel directory"):
        load_runner(tmp_path)
    with pytest.raises(Pix2PixError, match="no such file"):
        load_runner(tmp_path / "missing.tflite")


SHIPPED = Path(__file__).resolve().parents[1] / "saved_models" / "facades_demo"


def test_shipped_demo_model_works_before_anyone_trains(tmp_path):
    total = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert total <= 25e6, total
    card = json.loads((SHIPPED / "saved_model/assets/model_card.json").read_text())
    assert card["direction"] == "BtoA" and card["input"]["size"] == [64, 64]
    synthesize("facades", tmp_path / "data", count=3, size=64, seed=5)
    test_file = tmp_path / "data/test/1.jpg"
    outputs = {}
    for name in ("saved_model", "generator_float16.tflite", "generator_int8.tflite"):
        runner = load_runner(SHIPPED / name)
        outputs[name] = translate_file(runner, test_file, runner.image_size, runner.channels, half="right")
        assert outputs[name].shape == (64, 64, 3)
    reference = outputs["saved_model"].astype(float) / 127.5 - 1
    assert psnr(outputs["generator_float16.tflite"].astype(float) / 127.5 - 1, reference) >= 40
    assert psnr(outputs["generator_int8.tflite"].astype(float) / 127.5 - 1, reference) >= 28
    assert outputs["saved_model"].std() > 20  # a photo with structure, not a flat untrained output
