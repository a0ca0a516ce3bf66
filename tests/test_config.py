import json

import pytest

from pix2pix_tf.config import PRESETS, Config, DataConfig, ModelConfig, TrainConfig, load_config, preset, save_config
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
    with pytest.raises(Pix2PixError, match="not a valid pix2pix_tf config"):
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


def test_every_public_name_resolves():
    import pix2pix_tf
    import pix2pix_tf.data

    for module in (pix2pix_tf, pix2pix_tf.data):
        for name in module.__all__:
            assert getattr(module, name) is not None, name
