import json

import numpy as np
import pytest
from conftest import write_image
from PIL import Image

from pix2pix_tf.artifacts.datasets import COMBINE_MARKER as MARKER
from pix2pix_tf.data.combine import combine
from pix2pix_tf.errors import DataError, Pix2PixError


def test_combine_pairs_by_name_and_reports_the_rest(tmp_path, capsys):
    a, b = np.full((16, 16, 3), 10), np.full((16, 16, 3), 240)
    write_image(tmp_path / "A/train/x.png", a)
    write_image(tmp_path / "B/train/x.png", b)
    write_image(tmp_path / "A/train/only_a.png", a)
    write_image(tmp_path / "B/train/only_b.png", b)
    write_image(tmp_path / "A/test/big.png", a)
    write_image(tmp_path / "B/test/big.png", np.zeros((16, 20, 3)))
    (tmp_path / "A/test/bad.png").write_bytes(b"junk")
    (tmp_path / "B/test/bad.png").write_bytes(b"junk")
    report = combine(tmp_path / "A", tmp_path / "B", tmp_path / "AB")
    assert report.written == 1
    assert report.only_in_a == ["train/only_a.png"] and report.only_in_b == ["train/only_b.png"]
    assert report.size_mismatch == ["test/big.png 16x16 vs 20x16"]
    assert report.unreadable == ["test/bad.png"]
    ab = np.asarray(Image.open(tmp_path / "AB/train/x.png"))
    assert ab.shape == (16, 32, 3) and (ab[:, :16] == 10).all() and (ab[:, 16:] == 240).all()
    assert "1 only in A (train/only_a.png)" in capsys.readouterr().out


def test_flat_folders(tmp_path):
    write_image(tmp_path / "A/1.jpg", np.zeros((8, 8, 3)))
    write_image(tmp_path / "B/1.jpg", np.zeros((8, 8, 3)))
    assert combine(tmp_path / "A", tmp_path / "B", tmp_path / "AB").written == 1
    assert Image.open(tmp_path / "AB/1.jpg").size == (16, 8)


def test_package_names_are_the_functions_not_the_modules():
    import pix2pix_tf.data.combine  # noqa: F401  (importing the submodule must not shadow the function)
    from pix2pix_tf.data import combine as combine_fn
    from pix2pix_tf.data import download

    assert callable(combine_fn) and callable(download)


def test_refuses_an_output_folder_it_did_not_write(tmp_path):
    write_image(tmp_path / "A/train/1.jpg", np.zeros((8, 8, 3)))
    write_image(tmp_path / "B/train/1.jpg", np.zeros((8, 8, 3)))
    write_image(tmp_path / "photos/train/1.jpg", np.full((8, 8, 3), 200))  # would be overwritten
    before = (tmp_path / "photos/train/1.jpg").read_bytes()
    with pytest.raises(
        Pix2PixError, match="photos: folder is not empty and was not written by pix2pix-tf data combine"
    ):
        combine(tmp_path / "A", tmp_path / "B", tmp_path / "photos")
    for out in (tmp_path / "A/AB", tmp_path / "B", tmp_path):  # inside an input, an input, holding them
        with pytest.raises(DataError, match="must be outside the input folder"):
            combine(tmp_path / "A", tmp_path / "B", out)
    assert (tmp_path / "photos/train/1.jpg").read_bytes() == before
    assert not (tmp_path / "A/AB").exists() and not list(tmp_path.glob(".*"))


def test_a_rerun_replaces_its_own_output_whole(tmp_path):
    for name in ("1", "2"):
        write_image(tmp_path / f"A/{name}.png", np.zeros((8, 8, 3)))
        write_image(tmp_path / f"B/{name}.png", np.zeros((8, 8, 3)))
    combine(tmp_path / "A", tmp_path / "B", tmp_path / "AB")
    (tmp_path / "A/2.png").unlink()
    assert combine(tmp_path / "A", tmp_path / "B", tmp_path / "AB").written == 1
    assert sorted(p.name for p in (tmp_path / "AB").iterdir()) == [MARKER, "1.png"]  # 2.png is gone
    assert json.loads((tmp_path / "AB" / MARKER).read_text())["a"] == str((tmp_path / "A").resolve())


def test_files_sharing_a_name_are_reported_and_a_bad_partner_is_named(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("q.jpg", "q.png", "r.png", "s.png"):
        write_image(tmp_path / "A/train" / name, rng.integers(0, 256, (8, 8, 3)))
    for name in ("q.png", "s.png"):
        write_image(tmp_path / "B/train" / name, rng.integers(0, 256, (8, 8, 3)))
    (tmp_path / "B/train/r.png").write_bytes(b"not an image")
    report = combine(tmp_path / "A", tmp_path / "B", tmp_path / "out")
    assert report.same_name == ["train/q.jpg and train/q.png"]  # neither is picked silently
    assert report.unreadable == ["train/r.png (in B)"]  # the file at fault, not its partner
    assert report.written == 1 and "1 sharing a name, left out (train/q.jpg and train/q.png)" in report.summary()
