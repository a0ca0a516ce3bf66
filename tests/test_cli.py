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
    assert main(["data", "synth", "facades", "--out", str(tmp_path / "d")]) == 2  # README: a full disk is 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: no space left on device writing {tmp_path / 'd/train/1.jpg'}")


def _no_space(where="x"):
    return OSError(errno.ENOSPC, "No space left on device", where)


def _tf_no_space():
    import tensorflow as tf

    # What SaveV2 raised when a checkpoint or SavedModel filled a 1 MB tmpfs here.
    return tf.errors.ResourceExhaustedError(None, None, "w/ckpt-1_temp/part-00000-of-00001; No space left on device")


def _raise(error):
    def raising(*args, **kwargs):
        raise error

    return raising


@pytest.fixture(scope="module")
def small_run(tiny_data, trained_workdir):
    """The session's 32 px synthetic dataset and the work dir trained on it (tests/conftest.py).

    Read-only: every case writes under its own tmp_path and fails before writing anything.
    """
    return tiny_data, trained_workdir


def _small_train(data, work):
    # Eagerly: the writes are the same, and tracing the step would cost each case 20 s.
    return [
        *["train", "--data", str(data), "--workdir", str(work), "--run-eagerly"],
        *["--image-size", "32", "--ngf", "8", "--ndf", "8"],
    ]


def _train_with(patch):
    """A fresh 2-step run whose writing fails as `patch(monkeypatch)` makes it."""

    def case(monkeypatch, tmp_path, data, work):
        patch(monkeypatch)
        return [*_small_train(data, tmp_path / "w"), "--steps", "2"]

    return case


def _patch_checkpoint(monkeypatch):
    import tensorflow as tf

    monkeypatch.setattr(tf.train.CheckpointManager, "save", _raise(_tf_no_space()))


def _patch_logs(monkeypatch):
    # TensorFlow's event writer drops what it cannot write (checked on a full tmpfs): this
    # stands for a writer that reports it.
    import tensorflow as tf

    monkeypatch.setattr(tf.summary, "scalar", _raise(_tf_no_space()))


def _patch_train(target, where):
    return lambda monkeypatch: monkeypatch.setattr(target, _raise(_no_space(where)))


def _export(monkeypatch, tmp_path, data, work):
    import tensorflow as tf

    monkeypatch.setattr(tf.saved_model, "save", _raise(_tf_no_space()))
    return ["export", "--workdir", str(work), "--out", str(tmp_path / "exp"), "--tflite", ""]


def _evaluate(monkeypatch, tmp_path, data, work):
    from pix2pix_tf import evaluate

    monkeypatch.setattr(evaluate, "write_json", _raise(_no_space("metrics.json")))
    return ["evaluate", "--workdir", str(work), "--data", str(data), "--out", str(tmp_path / "ev")]


def _predict(monkeypatch, tmp_path, data, work):
    from pathlib import Path

    monkeypatch.setattr(Path, "write_bytes", _raise(_no_space()))
    return ["predict", "--workdir", str(work), "--input", str(data / "test"), "--output", str(tmp_path / "out")]


def _synth(monkeypatch, tmp_path, data, work):
    monkeypatch.setattr(Image.Image, "save", _raise(_no_space()))
    return ["data", "synth", "facades", "--out", str(tmp_path / "d"), "--count", "3", "--size", "32"]


def _combine(monkeypatch, tmp_path, data, work):
    from conftest import write_image

    for side in ("A", "B"):
        write_image(tmp_path / side / "train/1.png", np.zeros((8, 8, 3)))
    monkeypatch.setattr(Image.Image, "save", _raise(_no_space()))
    return ["data", "combine", "--a", str(tmp_path / "A"), "--b", str(tmp_path / "B"), "--out", str(tmp_path / "AB")]


def _download(monkeypatch, tmp_path, data, work):
    import shutil

    (tmp_path / "facades.tar.gz").write_bytes(b"an archive")
    monkeypatch.setattr(shutil, "copyfileobj", _raise(_no_space()))
    url = (tmp_path / "facades.tar.gz").as_uri()
    return ["data", "download", "facades", "--out", str(tmp_path / "d"), "--url", url]


def _show(monkeypatch, tmp_path, data, work):
    from matplotlib.figure import Figure

    monkeypatch.setattr(Figure, "savefig", _raise(_no_space()))
    return ["data", "show", str(data), "--image-size", "32", "--count", "2", "--out", str(tmp_path / "grid.png")]


def _experiment(monkeypatch, tmp_path, data, work):
    from pix2pix_tf.experiments import runner

    monkeypatch.setattr(runner, "write_json", _raise(_no_space("experiment.json")))
    return ["experiment", "objective", "--out", str(tmp_path / "x"), "--quick"]


def _demo(monkeypatch, tmp_path, data, work):
    from pix2pix_tf import demo
    from pix2pix_tf.data.synthetic import synthesize

    synthesize("facades", tmp_path / "demo/data", count=12, size=64)
    monkeypatch.setattr(demo, "CALIBRATION_STEPS", 2)
    real_train = demo.train
    monkeypatch.setattr(demo, "train", lambda *args, **kwargs: real_train(*args, run_eagerly=True, **kwargs))
    # Its record of the run length, written after the speed probe.
    monkeypatch.setattr(demo, "write_json", _raise(_no_space("demo.json")))
    return ["demo", "--workdir", str(tmp_path / "demo"), "--minutes", "30"]


def _chained(monkeypatch, tmp_path, data, work):
    from pix2pix_tf.data import synthetic

    def wrapped(*args, **kwargs):
        try:
            raise _no_space("d/train/1.jpg")
        except OSError as e:
            raise RuntimeError("could not save the image") from e

    monkeypatch.setattr(synthetic, "synthesize", wrapped)
    return ["data", "synth", "facades", "--out", str(tmp_path / "d")]


@pytest.mark.parametrize(
    "case",
    [
        _train_with(_patch_checkpoint),
        _train_with(_patch_train("pix2pix_tf.artifacts.workdir.WorkDir.write_config", "config.json")),
        _train_with(_patch_logs),
        _train_with(_patch_train("pix2pix_tf.train.jobs._save_sample", "samples/step_0000002.png")),
        _train_with(_patch_train("pix2pix_tf.train.loop.write_json", "run.json")),
        _export,
        _evaluate,
        _predict,
        _synth,
        _combine,
        _download,
        _show,
        _experiment,
        _demo,
        _chained,
    ],
    ids=[
        "train-checkpoint",
        "train-config",
        "train-logs",
        "train-samples",
        "train-run-record",
        "export",
        "evaluate",
        "predict",
        "data-synth",
        "data-combine",
        "data-download",
        "data-show",
        "experiment",
        "demo",
        "wrapped-by-a-library",
    ],
)
def test_a_full_disk_is_one_line_and_exit_status_2_on_every_write_path(case, small_run, tmp_path, monkeypatch, capsys):
    argv = case(monkeypatch, tmp_path, *small_run)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: ") and "no space left on device" in err[0].lower(), err
    assert "unexpected" not in err[0]


def test_evaluate_with_a_config_that_does_not_match_the_checkpoint(tiny_data, trained_workdir, tmp_path):
    import json
    import shutil

    from conftest import TINY_STEPS

    data = tiny_data
    work = tmp_path / "w"
    shutil.copytree(trained_workdir, work)  # 32 px, ngf 8 (tests/conftest.py)
    config = json.loads((work / "config.json").read_text())
    config["model"]["ngf"] = 16  # edited by hand after training
    (work / "config.json").write_text(json.dumps(config))
    # A real process: TensorFlow's warnings about unrestored values come at exit.
    result = _run_cli("evaluate", "--workdir", str(work), "--data", str(data))
    assert result.returncode == 2
    err = result.stderr.strip().splitlines()
    assert len(err) == 1, result.stderr[:2000]
    assert err[0].startswith(f"error: {work / f'checkpoints/ckpt-{TINY_STEPS}'} does not fit the model that ")
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
    assert "broken.jpg: not a readable image" in lines[1]
    assert "Traceback" not in result.stderr and "rendezvous" not in result.stderr


def test_debug_env_shows_the_traceback_in_a_real_process(tmp_path):
    (tmp_path / "train").mkdir()
    result = _run_cli("data", "show", str(tmp_path), "--out", str(tmp_path / "g.png"), env={"PIX2PIX_DEBUG": "1"})
    assert result.returncode != 0 and "Traceback" in result.stderr and "no images" in result.stderr


def _command_parser(name):
    """The argparse parser of one `pix2pix-tf` command, as `main` builds it."""
    import argparse

    from pix2pix_tf.cli import build_parser

    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return commands.choices[name]


def _default_text(value):
    return f"(default {value:g})" if isinstance(value, float) else f"(default {value})"


# Every flag `train` had before its flags were made from the config's fields; none may go.
TRAIN_FLAGS_BEFORE = (
    "--data --workdir --preset --image-size --load-size --channels --direction --preprocess --no-flip --batch-size "
    "--cache --skip-bad --generator --ngf --ndf --norm --dropout --d-receptive-field --unconditional --gan-loss "
    "--lambda-l1 --no-gan --no-l1 --lr --beta-1 --steps --epochs --decay-steps --decay-epochs --precision --seed "
    "--checkpoint-every --keep-checkpoints --sample-every --log-every --steps-per-call --run-eagerly --strategy"
).split()


@pytest.mark.parametrize(
    "command,section", [("train", "data"), ("train", "model"), ("train", "train"), ("serve", None)]
)
def test_every_config_field_is_a_flag_with_its_help_and_default(command, section):
    import dataclasses

    from pix2pix_tf.config import Config, Connections

    section_cls = Connections if section is None else type(getattr(Config(), section))
    actions = {action.dest: action for action in _command_parser(command)._actions}
    for field in dataclasses.fields(section_cls):
        action = actions[field.metadata["flag"] or field.name]
        assert action.help.startswith(field.metadata["help"]), field.name
        if isinstance(field.default, bool):
            assert action.nargs == 0 and action.default is None, field.name  # a switch, None when not given
        elif field.default is None:
            assert action.help.endswith(f"(default: {field.metadata['unset']})"), field.name
        else:
            assert action.help.endswith(_default_text(field.default)), field.name
        assert tuple(action.choices or ()) == field.metadata["choices"], field.name


def test_train_keeps_every_flag_it_had():
    options = {option for action in _command_parser("train")._actions for option in action.option_strings}
    assert set(TRAIN_FLAGS_BEFORE) <= options


def test_train_help_states_the_run_length_the_schedule_uses():
    from pix2pix_tf.train import DEFAULT_EPOCHS

    epochs = {action.dest: action for action in _command_parser("train")._actions}["epochs"]
    assert epochs.help.endswith(f"(default: {DEFAULT_EPOCHS})")


def test_only_the_options_given_override_a_preset_or_a_saved_config(tmp_path):
    from pix2pix_tf.cli.options import overrides
    from pix2pix_tf.cli.train import TRAIN_FLAGS
    from pix2pix_tf.config import preset

    def given(*argv):
        args = _command_parser("train").parse_args(["--data", "d", "--workdir", "w", *argv])
        return overrides(args, TRAIN_FLAGS)

    assert given() == {"data": {}, "model": {}, "train": {}}
    given_some = given("--no-flip", "--cache", "--unconditional", "--lr", "0.1", "--norm", "instance", "--epochs", "5")
    assert given_some == {
        "data": {"flip": False, "cache": True},
        "model": {"conditional": False, "norm": "instance"},
        "train": {"learning_rate": 0.1, "epochs": 5, "steps": None},  # a length given one way clears the other
    }
    assert given("--steps", "7", "--decay-epochs", "2")["train"] == {
        "steps": 7,
        "epochs": None,
        "decay_epochs": 2,
        "decay_steps": None,
    }
    shoes = preset("edges2shoes").replace(**given("--image-size", "64"))
    assert (shoes.data.image_size, shoes.data.batch_size, shoes.data.flip, shoes.train.epochs) == (64, 4, False, 15)
    with pytest.raises(SystemExit):
        _command_parser("train").parse_args(["--data", "d", "--workdir", "w", "--steps", "1", "--epochs", "1"])


def test_a_field_declared_with_option_becomes_a_flag(capsys):
    import argparse
    import dataclasses

    from pix2pix_tf.cli.options import add_flags, config_flags, overrides
    from pix2pix_tf.config import option

    @dataclasses.dataclass(frozen=True)
    class Extra:
        rate: float = option(0.25, "a rate")
        mode: str = option("a", "a mode", choices=("a", "b"), group="modes")
        on: bool = option(True, "turn it off", flag="off")
        count: int | None = option(None, "how many", unset="as many as there are")
        share: float | None = option(None, "what share", unset="all", instead_of="count")

    @dataclasses.dataclass(frozen=True)
    class Sections:
        extra: Extra = Extra()

    flags = config_flags(Sections)
    parser = argparse.ArgumentParser()
    groups = add_flags(parser, flags, {"extra": "extra options"})
    assert set(groups) == {"extra options", "modes"}
    assert overrides(parser.parse_args([]), flags) == {"extra": {}}
    args = parser.parse_args(["--rate", "0.5", "--mode", "b", "--off", "--count", "3"])
    assert overrides(args, flags) == {"extra": {"rate": 0.5, "mode": "b", "on": False, "count": 3, "share": None}}
    assert Extra(**overrides(args, flags)["extra"]) == Extra(rate=0.5, mode="b", on=False, count=3)
    help_text = " ".join(parser.format_help().split())
    for line in ("--rate RATE a rate (default 0.25)", "a mode (default a)", "--off turn it off", "(default: all)"):
        assert line in help_text
    for bad in (["--rate", "x"], ["--mode", "c"], ["--count", "1", "--share", "0.5"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    capsys.readouterr()
