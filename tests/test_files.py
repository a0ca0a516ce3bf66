import dataclasses
import os

import numpy as np
import pytest
from conftest import write_image

from pix2pix_tf.config import DataConfig
from pix2pix_tf.data.files import find_pairs, image_size_of
from pix2pix_tf.errors import DataError

CFG = DataConfig(image_size=32)


def _good(path, w=64, h=32):
    return write_image(path, np.random.default_rng(1).integers(0, 256, (h, w, 3)))


def test_finds_combined_pairs_sorted(inverse_pairs):
    pairs = find_pairs(inverse_pairs, "train", CFG)
    assert pairs.layout == "combined" and len(pairs) == 6
    assert list(pairs.names) == [str(i) for i in range(6)]


def test_finds_two_folder_pairs_by_name_any_extension(tmp_path):
    _good(tmp_path / "A/train/x.png", 32)
    _good(tmp_path / "B/train/x.jpg", 32)
    pairs = find_pairs(tmp_path, "train", CFG)
    assert pairs.layout == "two-folder"
    assert pairs.b_paths[0].endswith("B/train/x.jpg")


def test_the_first_pairs_keep_their_partners(tmp_path):
    for name in ("a", "b", "c"):
        _good(tmp_path / f"A/train/{name}.png", 32)
        _good(tmp_path / f"B/train/{name}.png", 32)
    first = find_pairs(tmp_path, "train", CFG).first(2)
    assert first.names == ("a", "b") and len(first) == 2
    assert [os.path.relpath(p, tmp_path) for p in first.b_paths] == ["B/train/a.png", "B/train/b.png"]


@pytest.mark.parametrize("mode", ["RGBA", "L", "LA", "P", "CMYK"])
def test_every_colour_mode_decodes(tmp_path, mode):
    from PIL import Image

    path = tmp_path / "img.png"
    Image.new("RGB", (10, 8), (200, 100, 50)).convert(mode).save(path.with_suffix(".jpg" if mode == "CMYK" else ".png"))
    assert image_size_of(path.with_suffix(".jpg" if mode == "CMYK" else ".png")) == (8, 10)


@pytest.mark.parametrize("fmt", ["BMP", "GIF", "JPEG", "PNG"])
def test_every_format_decodes(tmp_path, fmt):
    path = write_image(tmp_path / f"img.{fmt.lower()}", np.zeros((8, 10, 3)), format=fmt)
    assert image_size_of(path) == (8, 10)


def test_corrupt_file_is_named(tmp_path):
    _good(tmp_path / "train/ok.png")
    (tmp_path / "train/broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match=r"broken\.jpg: not a readable image"):
        find_pairs(tmp_path, "train", CFG)


def test_truncated_jpeg_is_caught(tmp_path):
    path = write_image(tmp_path / "train/t.jpg", np.random.default_rng(0).integers(0, 256, (64, 128, 3)))
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(DataError, match=r"t\.jpg: not a readable"):
        find_pairs(tmp_path, "train", CFG)


def test_odd_width_is_named(tmp_path):
    _good(tmp_path / "train/odd.png", w=63)
    with pytest.raises(DataError, match=r"odd\.png: width 63 is odd"):
        find_pairs(tmp_path, "train", CFG)


def test_size_mismatch_is_named(tmp_path):
    _good(tmp_path / "A/train/x.png", 32, 32)
    _good(tmp_path / "B/train/x.png", 40, 32)
    with pytest.raises(DataError, match=r"x\.png is 32x32 but its partner .*x\.png is 40x32"):
        find_pairs(tmp_path, "train", CFG)


def test_missing_partner_is_named(tmp_path):
    _good(tmp_path / "A/train/x.png", 32)
    _good(tmp_path / "A/train/lonely.png", 32)
    _good(tmp_path / "B/train/x.png", 32)
    with pytest.raises(DataError, match=r"lonely\.png: no partner named lonely\.\*"):
        find_pairs(tmp_path, "train", CFG)


def test_missing_partner_on_the_b_side_is_treated_alike(tmp_path, capsys):
    _good(tmp_path / "A/train/x.png", 32)
    _good(tmp_path / "B/train/x.png", 32)
    _good(tmp_path / "B/train/orphan.png", 32)
    with pytest.raises(DataError, match=r"B/train/orphan\.png: no partner named orphan\.\* in .*A/train"):
        find_pairs(tmp_path, "train", CFG)
    pairs = find_pairs(tmp_path, "train", dataclasses.replace(CFG, skip_bad=True))
    assert pairs.names == ("x",) and [kind for kind, _ in pairs.skipped] == ["unmatched"]
    assert "skipped 1 bad file(s)" in capsys.readouterr().out


def test_missing_and_empty_split(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(DataError, match=r"train: no images"):
        find_pairs(tmp_path, "train", CFG)
    with pytest.raises(DataError, match=r"val: split folder not found"):
        find_pairs(tmp_path, "val", CFG)
    with pytest.raises(DataError, match="dataset directory not found"):
        find_pairs(tmp_path / "nope", "train", CFG)


def test_crop_mode_needs_big_enough_images(tmp_path):
    _good(tmp_path / "train/small.png", w=48, h=24)
    with pytest.raises(DataError, match="small.png: each half is 24x24; preprocess 'crop' needs at least 32x32"):
        find_pairs(tmp_path, "train", DataConfig(image_size=32, preprocess="crop"))


def test_skip_bad_counts_in_one_line(tmp_path, capsys):
    _good(tmp_path / "train/ok.png")
    _good(tmp_path / "train/odd.png", w=63)
    (tmp_path / "train/broken.png").write_bytes(b"junk")
    pairs = find_pairs(tmp_path, "train", DataConfig(image_size=32, skip_bad=True))
    assert [p.split("/")[-1] for p in pairs.a_paths] == ["ok.png"]
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"skipped 2 bad file(s) in {tmp_path / 'train'}: 1 odd width, 1 unreadable"]


def test_skip_bad_with_nothing_left_fails(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train/broken.png").write_bytes(b"junk")
    with pytest.raises(DataError, match="no valid image pairs left"):
        find_pairs(tmp_path, "train", DataConfig(image_size=32, skip_bad=True))


def test_many_bad_files_are_listed_with_a_count(tmp_path):
    for i in range(12):
        (tmp_path / "train" / f"{i}.png").parent.mkdir(exist_ok=True, parents=True)
        (tmp_path / "train" / f"{i}.png").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"12 bad file\(s\)[\s\S]*and 2 more[\s\S]*--skip-bad"):
        find_pairs(tmp_path, "train", CFG)
