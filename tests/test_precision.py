import json

import pytest

from pix2pix_tf import precision
from pix2pix_tf.artifacts import resolve_config
from pix2pix_tf.config import Config, DataConfig, ModelConfig, TrainConfig
from pix2pix_tf.precision import Hardware, choose
from pix2pix_tf.train import train


@pytest.mark.parametrize(
    "hardware, expected",
    [
        (Hardware(cpu_flags=frozenset({"avx512f", "avx512_bf16"})), "mixed_bfloat16"),
        (Hardware(cpu_flags=frozenset({"amx_bf16", "amx_tile"})), "mixed_bfloat16"),
        (Hardware(tpus=8), "mixed_bfloat16"),
        (Hardware(gpu_compute_capabilities=((8, 0), (8, 0))), "mixed_float16"),
        (Hardware(gpu_compute_capabilities=((6, 1),)), "float32"),
        (Hardware(cpu_flags=frozenset({"avx512_bf16"}), onednn=False), "float32"),
        (Hardware(), "float32"),
    ],
    ids=["avx512_bf16", "amx", "tpu", "ampere", "pascal", "onednn_off", "unknown"],
)
def test_auto_picks_by_hardware(hardware, expected):
    chosen, why = choose(hardware)
    assert chosen == expected and why


@pytest.mark.parametrize(
    "flags",
    [
        {"avx2", "fma"},  # Haswell-era
        {"avx512f", "avx512bw", "avx512_vnni"},  # Cascade Lake: AVX-512 but bfloat16 emulated
        {"avx512f", "avx512_fp16", "amx_tile"},  # half-present AMX without its bfloat16 unit
        {"neon", "asimd"},  # Arm
    ],
)
def test_auto_never_picks_emulated_bfloat16(flags):
    assert choose(Hardware(cpu_flags=frozenset(flags)))[0] == "float32"


def test_explicit_precision_is_kept():
    assert precision.resolve("float32", Hardware(tpus=1))[0] == "float32"


def test_auto_is_the_default():
    assert TrainConfig().precision == "auto"


# `facades`: the session's 12 synthetic pairs at 32 px (tests/conftest.py).
@pytest.mark.parametrize(
    "flags, expected", [({"avx512_bf16"}, "mixed_bfloat16"), ({"avx512f"}, "float32")], ids=["bf16", "no_bf16"]
)
def test_the_work_dir_records_the_choice(facades, tmp_path, monkeypatch, capsys, flags, expected):
    monkeypatch.setattr(precision, "detect", lambda: Hardware(cpu_flags=frozenset(flags)))
    config = Config(
        data=DataConfig(image_size=32, batch_size=2, direction="BtoA"),
        model=ModelConfig(ngf=8, ndf=8),
        train=TrainConfig(steps=2, checkpoint_every=100),
    )
    # Eagerly: what is recorded does not depend on it, and tracing would cost more than the steps.
    train(config, facades, tmp_path, run_eagerly=True)
    assert f"precision auto -> {expected}" in capsys.readouterr().out
    assert json.loads((tmp_path / "config.json").read_text())["train"]["precision"] == expected
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["precision"]["chosen"] == expected and run["precision"]["why"]
    # A rerun (the CLI's path: the saved config plus the new options) keeps the recorded
    # choice whatever the detection says now.
    monkeypatch.setattr(precision, "detect", lambda: Hardware(tpus=1))
    rerun = resolve_config(tmp_path, Config(), {"train": {"steps": 3}})
    assert rerun.train.precision == expected
    train(rerun, facades, tmp_path, run_eagerly=True)
    assert json.loads((tmp_path / "config.json").read_text())["train"]["precision"] == expected
    assert "precision auto" not in capsys.readouterr().out
