import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import write_image
from PIL import Image

from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.export.tflite import psnr
from pix2pix_tf.inference import Translator, input_files, load, load_generator, predict
from pix2pix_tf.signatures import NATIVE_SIGNATURE


def _fake(run, size=32):
    """A Translator around a plain function, for the image handling alone."""
    return Translator(run=run, run_any_size=run, image_size=size, channels=3, kind="test", path=Path("."))


def test_predict_brings_any_size_back(tmp_path):
    write_image(tmp_path / "in/wide.png", np.full((30, 70, 3), 200))
    write_image(tmp_path / "in/gray.jpg", np.full((41, 17), 10))
    seen = []

    def invert(x):
        seen.append(tuple(x.shape))
        return -x

    written = predict(_fake(invert), tmp_path / "in", tmp_path / "out")
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
        _fake(lambda x: x)(tmp_path / "bad.png")


def test_predict_never_writes_over_its_inputs_or_a_file(tmp_path):
    write_image(tmp_path / "in/x.png", np.full((8, 8, 3), 7))
    before = (tmp_path / "in/x.png").read_bytes()
    with pytest.raises(Pix2PixError, match="is the input folder; write the translations to another folder"):
        predict(_fake(lambda x: -x), tmp_path / "in", tmp_path / "in")
    assert (tmp_path / "in/x.png").read_bytes() == before
    (tmp_path / "out.png").write_bytes(b"mine")
    with pytest.raises(Pix2PixError, match="out.png: is a file; --output takes the folder"):
        predict(_fake(lambda x: -x), tmp_path / "in", tmp_path / "out.png")
    assert (tmp_path / "out.png").read_bytes() == b"mine"


def test_inputs_sharing_a_stem_get_outputs_of_their_own(tmp_path):
    write_image(tmp_path / "in/a.jpg", np.full((8, 8, 3), 10))
    write_image(tmp_path / "in/a.png", np.full((8, 8, 3), 240))
    write_image(tmp_path / "in/b.png", np.full((8, 8, 3), 128))
    written = predict(_fake(lambda x: x), tmp_path / "in", tmp_path / "out")
    assert [p.name for p in written] == ["a.jpg.png", "a.png.png", "b.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg.png", "a.png.png", "b.png"]
    # Each is its own input's translation (here the identity): neither replaced the other.
    for name, value in (("a.jpg.png", 10), ("a.png.png", 240)):
        assert abs(int(tf.io.decode_png((tmp_path / "out" / name).read_bytes()).numpy().mean()) - value) <= 2


def test_inputs_that_would_still_share_an_output_are_refused_before_writing(tmp_path):
    for name in ("a.jpg", "a.png", "a.jpg.png"):
        write_image(tmp_path / "in" / name, np.full((8, 8, 3), 7))
    with pytest.raises(Pix2PixError) as e:
        predict(_fake(lambda x: x), tmp_path / "in", tmp_path / "out")
    assert str(e.value) == (
        f"{tmp_path / 'in/a.jpg'} and {tmp_path / 'in/a.jpg.png'} would both be translated to a.jpg.png; "
        "rename one of them"
    )
    assert not (tmp_path / "out").exists()


def test_a_full_disk_while_predicting_names_the_file_and_leaves_no_partial_png(tmp_path, monkeypatch):
    import errno

    write_image(tmp_path / "in/x.png", np.full((8, 8, 3), 7))
    real_write = Path.write_bytes

    def full(self, data):
        real_write(self, data[: len(data) // 2])  # part of the file reaches the disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(Pix2PixError, match=r"out/x\.png: no space left on device while writing the translation of"):
        predict(_fake(lambda x: -x), tmp_path / "in", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_predict_one_half_of_ab_images(tmp_path):
    left, right = np.zeros((20, 30, 3)), np.full((20, 30, 3), 255)
    write_image(tmp_path / "ab.png", np.concatenate([left, right], axis=1))
    for half, value in (("left", 0), ("right", 255)):
        out = _fake(lambda x: x)(tmp_path / "ab.png", half=half)
        assert out.shape == (20, 30, 3) and np.abs(out.astype(int) - value).max() <= 1


def test_every_input_form_gives_the_input_size_back(tmp_path):
    seen = []

    def invert(x):
        seen.append(tuple(x.shape))
        return -x

    t = _fake(invert)
    rgb = np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    path = write_image(tmp_path / "x.png", rgb)
    one = t(rgb)
    assert one.shape == (30, 50, 3) and one.dtype == np.uint8
    np.testing.assert_array_equal(t(path), one)  # a file path
    np.testing.assert_array_equal(t(Image.fromarray(rgb)), one)  # a PIL image
    np.testing.assert_array_equal(t(rgb[..., :1].repeat(3, -1))[..., 0], t(rgb[..., 0])[..., 0])  # (H, W) gray
    rgba = np.concatenate([rgb, np.zeros((30, 50, 1), np.uint8)], axis=-1)
    np.testing.assert_array_equal(t(rgba), one)  # alpha dropped
    batch = t(np.stack([rgb, rgb]))
    assert batch.shape == (2, 30, 50, 3)
    assert [o.shape for o in t([rgb, rgb[:10, :20]])] == [(30, 50, 3), (10, 20, 3)]
    assert set(seen) == {(1, 32, 32, 3)}  # model size: every image resized to S x S
    with pytest.raises(Pix2PixError, match="expected a uint8 image .*got dtype float64"):
        t(rgb / 255.0)
    with pytest.raises(Pix2PixError, match=r"expected an image of shape .*got \(30, 50, 2\)"):
        t(rgb[..., :2])


def test_native_size_pads_to_the_unet_multiple_and_crops_back():
    seen = []

    def identity(x):
        seen.append(tuple(x.shape))
        return x

    t = _fake(identity, size=64)  # depth 6: multiples of 64
    assert t.multiple == 64
    image = np.random.default_rng(1).integers(0, 256, (70, 150, 3), dtype=np.uint8)
    out = t(image, native_size=True)
    assert seen == [(1, 128, 192, 3)]  # padded up, never squashed
    np.testing.assert_array_equal(out, image)  # cropped back exactly: no resize anywhere


@pytest.fixture(scope="module")
def trained(tiny_data, trained_workdir, tiny_export):
    """The session's tiny model (tests/conftest.py): data/, its work dir work/ and its export exp/."""
    return trained_workdir.parent


def test_load_takes_every_form_and_they_agree(trained):
    # A 40 x 70 label map: model size resizes it; native size runs at 64 x 96 and crops.
    image = np.asarray(Image.open(trained / "data/test/1.jpg"))[:, 32:]
    image = np.asarray(Image.fromarray(image).resize((70, 40)))
    forms = {
        "workdir": trained / "work",
        "export": trained / "exp",
        "saved_model": trained / "exp/saved_model",
        "tflite_float32": trained / "exp/generator_float32.tflite",
        "tflite_int8": trained / "exp/generator_int8.tflite",
    }
    out = {}
    for name, path in forms.items():
        t = load(path)
        assert (t.image_size, t.channels, t.multiple) == (32, 3, 32)
        out[name] = (t(image), t(image, native_size=True))
        assert out[name][0].shape == out[name][1].shape == (40, 70, 3)
    reference = out["workdir"]
    assert not np.array_equal(reference[0], reference[1])  # two different ways of applying the model
    assert reference[1].std() > 5  # structure, not a flat image
    for name, (model_size, native) in out.items():
        gate = 28 if name == "tflite_int8" else 50
        for mine, ref in ((model_size, reference[0]), (native, reference[1])):
            assert psnr(mine / 127.5 - 1, ref / 127.5 - 1) >= gate, name


def test_native_size_is_the_generator_run_fully_convolutionally(trained):
    from pix2pix_tf.models import any_size

    generator = load_generator(trained / "work")[0]
    native = any_size(generator)
    assert native.weights[0] is generator.weights[0]  # shared, not copied
    x = tf.random.uniform((1, 64, 96, 3), -1, 1, seed=3)
    image = ((x[0].numpy() + 1) * 127.5).round().astype(np.uint8)
    expected = ((native(image[None] / 127.5 - 1.0, training=False)[0].numpy() + 1) * 127.5).round().clip(0, 255)
    np.testing.assert_allclose(load(trained / "work")(image, native_size=True), expected, atol=1)
    saved = json.dumps(sorted(tf.saved_model.load(str(trained / "exp/saved_model")).signatures))
    assert NATIVE_SIGNATURE in saved


def test_load_errors(trained, tmp_path):
    with pytest.raises(Pix2PixError, match="no such file or folder"):
        load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(Pix2PixError, match="empty: not a model: expected a work dir"):
        load(tmp_path / "empty")
    with pytest.raises(Pix2PixError, match="stochastic mode needs a training work dir"):
        load(trained / "exp", stochastic=True)
    (tmp_path / "junk.tflite").write_bytes(b"not a flatbuffer" * 64)
    with pytest.raises(Pix2PixError, match=r"junk.tflite: not a TFLite model \("):
        load(tmp_path / "junk.tflite")
    (tmp_path / "export/saved_model").mkdir(parents=True)
    (tmp_path / "export/saved_model/saved_model.pb").write_bytes(b"not a protobuf" * 64)
    with pytest.raises(Pix2PixError, match=r"saved_model: not a readable SavedModel \("):
        load(tmp_path / "export")


def _single_signature_tflite(generator) -> bytes:
    """The generator converted as exports did before the uint8 signature: from Keras, one signature."""
    source = keras.Input(batch_shape=(1, *generator.input_shape[1:]), name="input_image")
    return tf.lite.TFLiteConverter.from_keras_model(keras.Model(source, generator(source))).convert()


def test_tflite_runner_takes_the_float_signature_of_old_and_new_files(trained):
    from pix2pix_tf.inference import TFLiteRunner, generator_from_export
    from pix2pix_tf.shipped import shipped_model

    shipped = shipped_model()
    # Files exported before the uint8 signature: one signature, its output named output_0.
    old = TFLiteRunner(_single_signature_tflite(generator_from_export(shipped)[0]))
    assert old.interpreter.get_signature_list() == {
        "serving_default": {"inputs": ["input_image"], "outputs": ["output_0"]}
    }
    new = TFLiteRunner(trained / "exp/generator_float16.tflite")
    assert sorted(new.interpreter.get_signature_list()) == ["serving_default", "translate_image"]
    assert old.signature == new.signature == "serving_default"
    # At the model size, at other sizes (the runner resizes the signature's input), and back.
    for runner, size, reference in ((old, 64, load(shipped / "saved_model")), (new, 32, load(trained / "work"))):
        assert (runner.image_size, runner.channels) == (size, 3)
        for seed, (height, width) in enumerate(((size, size), (2 * size, size), (size, 3 * size), (size, size))):
            x = tf.random.stateless_uniform((1, height, width, 3), (seed, 2), -1, 1).numpy()
            y = runner(x)
            assert y.shape == x.shape and y.dtype == np.float32
            assert psnr(y, reference.run_any_size(x)) >= 40, (size, height, width)


def _tflite_file(path, signatures):
    """A .tflite file of trivial signatures: {key: (input dtype, output dtype)}."""

    def function(dtype, output_dtype):
        spec = tf.TensorSpec([1, 8, 8, 3], dtype, "x")
        return tf.function(lambda x: {"y": tf.cast(x, output_dtype)}, input_signature=[spec]).get_concrete_function()

    saved = path.with_suffix(".saved")
    tf.saved_model.save(tf.Module(), str(saved), signatures={k: function(*v) for k, v in signatures.items()})
    path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=list(signatures)).convert())
    return path


def test_tflite_runner_refuses_a_file_without_a_float_signature(tmp_path):
    from pix2pix_tf.inference import TFLiteRunner

    two = _tflite_file(tmp_path / "two.tflite", {"a": (tf.float32, tf.float32), "b": (tf.float32, tf.float32)})
    refusal = r"two.tflite: expected a serving_default signature or a single one; found a, b$"
    with pytest.raises(Pix2PixError, match=refusal):
        load(two)
    pixels = _tflite_file(tmp_path / "pixels.tflite", {"serving_default": (tf.uint8, tf.uint8)})
    with pytest.raises(Pix2PixError, match=r"pixels.tflite: its serving_default signature does not take and return"):
        load(pixels)
    assert TFLiteRunner(_tflite_file(tmp_path / "one.tflite", {"b": (tf.float32, tf.float32)})).signature == "b"


def test_stochastic_translations_differ_between_calls(trained):
    t = load(trained / "work", stochastic=True)
    image = np.asarray(Image.open(trained / "data/test/1.jpg"))[:, 32:]
    assert not np.array_equal(t(image), t(image))


def test_cli_predict_native_size(trained, tmp_path):
    from pix2pix_tf.cli import main

    image = np.asarray(Image.open(trained / "data/test/1.jpg"))[:, 32:]
    write_image(tmp_path / "in/big.png", np.asarray(Image.fromarray(image).resize((90, 50))))
    for flag, folder in (([], "model"), (["--native-size"], "native")):
        argv = ["predict", "--model", str(trained / "exp"), "--input", str(tmp_path / "in")]
        assert main([*argv, "--output", str(tmp_path / folder), *flag]) == 0
    a = np.asarray(Image.open(tmp_path / "model/big.png"))
    b = np.asarray(Image.open(tmp_path / "native/big.png"))
    assert a.shape == b.shape == (50, 90, 3) and not np.array_equal(a, b)


def test_tflite_threads_default_to_the_available_cores_and_can_be_set(trained, monkeypatch, tmp_path):
    import pix2pix_tf.inference as inference

    seen = []
    real = inference.TFLiteRunner.__init__

    def spy(self, model, num_threads=None):
        real(self, model, num_threads)
        seen.append(self.num_threads)

    monkeypatch.setattr(inference, "available_cores", lambda: 3)
    monkeypatch.setattr(inference.TFLiteRunner, "__init__", spy)
    tflite = trained / "exp" / "generator_float32.tflite"
    load(tflite)
    load(tflite, num_threads=1)
    from pix2pix_tf.cli import main

    write_image(tmp_path / "in" / "a.png", np.zeros((32, 32, 3)))
    assert (
        main(
            [
                "predict",
                "--model",
                str(tflite),
                "--input",
                str(tmp_path / "in"),
                "--output",
                str(tmp_path / "o"),
                "--threads",
                "2",
            ]
        )
        == 0
    )
    assert seen == [3, 1, 2]
    with pytest.raises(Pix2PixError, match="whole number >= 1; got 0"):
        load(tflite, num_threads=0)


def test_load_generator_says_it_needs_a_training_work_dir(tmp_path, tiny_export):
    (tmp_path / "empty").mkdir()
    with pytest.raises(Pix2PixError, match="empty: not a training work dir: expected a work dir"):
        load_generator(tmp_path / "empty")
    with pytest.raises(Pix2PixError, match=r"not a training work dir \(an export dir\): expected a work dir"):
        load_generator(tiny_export)
