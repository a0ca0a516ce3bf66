import json

import pytest

from pix2pix_tf.artifacts import load_config, save_config
from pix2pix_tf.config import (
    PRESETS,
    Config,
    Connections,
    DataConfig,
    ModelConfig,
    TrainConfig,
    option,
    preset,
)
from pix2pix_tf.errors import Pix2PixError


def test_paper_defaults():
    c = Config()
    assert (c.data.image_size, c.data.resize_to, c.data.batch_size) == (256, 286, 1)
    assert (c.model.ngf, c.model.ndf, c.model.d_receptive_field, c.model.dropout) == (64, 64, 70, 0.5)
    assert (c.train.lambda_l1, c.train.learning_rate, c.train.beta_1) == (100.0, 2e-4, 0.5)


def test_json_round_trip(tmp_path):
    c = Config().replace(data={"image_size": 64}, model={"norm": "instance"}, train={"steps": 7})
    save_config(c, tmp_path / "c.json")
    assert load_config(tmp_path / "c.json") == c


def test_load_size_follows_image_size():
    assert Config().replace(data={"image_size": 64}).data.resize_to == 71


def test_bad_values_are_clear():
    with pytest.raises(Pix2PixError, match="multiple of 32"):
        DataConfig(image_size=100)
    with pytest.raises(Pix2PixError, match="direction must be one of AtoB, BtoA; got 'AB'"):
        DataConfig(direction="AB")
    with pytest.raises(Pix2PixError, match="d_receptive_field"):
        ModelConfig(d_receptive_field=3)
    with pytest.raises(Pix2PixError, match="at least one of the GAN and L1"):
        TrainConfig(use_gan=False, use_l1=False)
    with pytest.raises(Pix2PixError, match="cache needs a fixed load size"):
        DataConfig(cache=True, preprocess="crop")


def test_bad_files(tmp_path):
    with pytest.raises(Pix2PixError, match="not found"):
        load_config(tmp_path / "missing.json")
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(Pix2PixError, match=r"c\.json is damaged: expected the config.json .*invalid JSON"):
        load_config(tmp_path / "c.json")
    (tmp_path / "c.json").write_text("[1, 2]")
    with pytest.raises(Pix2PixError, match=r"c\.json: expected .*found list"):
        load_config(tmp_path / "c.json")
    (tmp_path / "c.json").write_text(json.dumps({"model": {"dropout": 2}}))
    with pytest.raises(Pix2PixError, match=r"c\.json: dropout must be a number in \[0, 1\); got 2"):
        load_config(tmp_path / "c.json")
    (tmp_path / "c.json").write_text(json.dumps({"model": {"width": 3}}))
    with pytest.raises(Pix2PixError, match=r"unknown model config keys \['width'\]"):
        load_config(tmp_path / "c.json")


def test_presets_override_only_what_differs():
    assert set(PRESETS) >= {"facades", "maps", "cityscapes", "edges2shoes", "edges2handbags", "night2day"}
    facades = preset("facades")
    assert facades.data.direction == "BtoA" and facades.train.epochs == 200 and facades.model == ModelConfig()
    shoes = preset("edges2shoes")
    assert shoes.data.batch_size == 4 and shoes.train.epochs == 15
    with pytest.raises(Pix2PixError, match="unknown preset"):
        preset("cats")


@pytest.mark.parametrize(
    "section,field,value,message",
    [
        (ModelConfig, "dropout", 1.5, r"dropout must be a number in \[0, 1\); got 1.5"),
        (ModelConfig, "dropout", -0.1, r"dropout must be a number in \[0, 1\); got -0.1"),
        (ModelConfig, "ngf", 0, "ngf must be a whole number >= 1; got 0"),
        (ModelConfig, "ndf", 2.5, "ndf must be a whole number >= 1; got 2.5"),
        (TrainConfig, "learning_rate", -1.0, r"learning_rate must be a number in \(0, inf\); got -1.0"),
        (TrainConfig, "learning_rate", 0.0, r"learning_rate must be a number in \(0, inf\); got 0.0"),
        (TrainConfig, "learning_rate", float("nan"), "learning_rate must be a number .*got nan"),
        (TrainConfig, "beta_1", 1.0, r"beta_1 must be a number in \[0, 1\); got 1.0"),
        (TrainConfig, "lambda_l1", -5.0, r"lambda_l1 must be a number in \[0, inf\); got -5.0"),
        (TrainConfig, "lambda_l1", float("inf"), "lambda_l1 must be a number .*got inf"),
        (TrainConfig, "steps", 0, "steps must be a whole number >= 1; got 0"),
        (TrainConfig, "decay_steps", -1, "decay_steps must be a whole number >= 0; got -1"),
        (TrainConfig, "seed", "x", r"seed must be a whole number in \[0, 4294967296\); got 'x'"),
        (TrainConfig, "seed", -1, r"seed must be a whole number in \[0, 4294967296\); got -1"),
        (TrainConfig, "seed", 2**32, r"seed must be a whole number in \[0, 4294967296\); got 4294967296"),
        (DataConfig, "batch_size", 0, "batch_size must be a whole number >= 1; got 0"),
        (DataConfig, "image_size", 64.0, "image_size must be a whole number >= 32; got 64.0"),
        (DataConfig, "load_size", 0, "load_size must be a whole number >= 1; got 0"),
    ],
)
def test_out_of_range_values_are_refused_where_they_enter(section, field, value, message):
    with pytest.raises(Pix2PixError, match=message):
        section(**{field: value})


def test_edge_values_in_range_are_accepted():
    assert ModelConfig(dropout=0.0).dropout == 0.0 and ModelConfig(ngf=1).ngf == 1
    assert TrainConfig(lambda_l1=0.0, beta_1=0.0, decay_steps=0).decay_steps == 0


@pytest.mark.parametrize("section", [DataConfig, ModelConfig, TrainConfig, Connections])
def test_every_option_is_declared_with_its_help(section):
    import dataclasses

    for field in dataclasses.fields(section):
        assert field.metadata.get("help"), f"{section.__name__}.{field.name} is not declared with config.option"
        assert (field.default is None) == (field.metadata["unset"] is not None), field.name
        if field.metadata["choices"]:
            assert field.default in field.metadata["choices"], field.name
        earlier = [f.name for f in dataclasses.fields(section)][: dataclasses.fields(section).index(field)]
        assert field.metadata["instead_of"] in (None, *earlier), field.name  # the CLI pairs them in field order


def test_an_option_without_a_default_says_what_that_means():
    with pytest.raises(ValueError, match="needs `unset`"):
        option(None, "how many")
    assert option(None, "how many", unset="all").metadata["unset"] == "all"


def test_every_public_name_is_the_library_object():
    import pix2pix_tf
    import pix2pix_tf.data
    import pix2pix_tf.models

    assert pix2pix_tf.build_generator is pix2pix_tf.models.build_generator
    assert pix2pix_tf.generate is pix2pix_tf.models.generate
    assert pix2pix_tf.data.find_pairs is pix2pix_tf.data.files.find_pairs
    for module in (pix2pix_tf, pix2pix_tf.data):
        assert len(module.__all__) == len(set(module.__all__)), module.__name__
        for name in module.__all__:
            value = getattr(module, name)
            # Each name is a function, class or constant of the package, not a stray module.
            assert getattr(value, "__module__", "pix2pix_tf").startswith("pix2pix_tf") or not callable(value), name
