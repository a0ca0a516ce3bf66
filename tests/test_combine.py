import numpy as np
from conftest import write_image
from PIL import Image

from pix2pix_tf.data.combine import combine


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
