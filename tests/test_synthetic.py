import errno
import hashlib
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pix2pix_tf.artifacts.datasets import SYNTH_MARKER as MARKER
from pix2pix_tf.cli import main
from pix2pix_tf.data.synthetic import (
    FACADE_PALETTE,
    example_dataset,
    facade_labels,
    render_facade,
    split_counts,
    synthesize,
)
from pix2pix_tf.errors import Pix2PixError


def _digest(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.jpg"))
    }


@pytest.mark.parametrize("name", ["facades", "edges2shapes"])
def test_deterministic_by_seed_and_split_layout(tmp_path, name):
    counts = synthesize(name, tmp_path / "a", count=10, size=32, seed=1)
    synthesize(name, tmp_path / "b", count=10, size=32, seed=1)
    synthesize(name, tmp_path / "c", count=10, size=32, seed=2)
    assert counts == {"train": 8, "val": 1, "test": 1}
    first = _digest(tmp_path / "a")
    assert sorted(first) == [
        "test/1.jpg",
        "train/1.jpg",
        "train/2.jpg",
        "train/3.jpg",
        "train/4.jpg",
        "train/5.jpg",
        "train/6.jpg",
        "train/7.jpg",
        "train/8.jpg",
        "val/1.jpg",
    ]
    assert first == _digest(tmp_path / "b")
    assert first != _digest(tmp_path / "c")
    assert Image.open(tmp_path / "a/train/1.jpg").size == (64, 32)  # A|B, 32 px each


def test_an_image_does_not_depend_on_the_count(tmp_path):
    synthesize("facades", tmp_path / "small", count=5, size=32)
    synthesize("facades", tmp_path / "big", count=50, size=32)
    assert (tmp_path / "small/train/2.jpg").read_bytes() == (tmp_path / "big/train/2.jpg").read_bytes()


def test_facade_labels_use_the_cmp_palette_and_a_real_layout(tmp_path):
    synthesize("facades", tmp_path, count=10, size=128, seed=0)
    ab = np.asarray(Image.open(tmp_path / "train/1.jpg")).astype(int)
    labels = ab[:, 128:].reshape(-1, 3)
    distance = np.abs(labels[:, None, :] - FACADE_PALETTE[None].astype(int)).sum(-1)
    nearest = distance.argmin(1)
    assert np.median(distance.min(1)) < 12  # JPEG noise only: label colours are palette colours
    present = set(np.unique(nearest))
    assert {0, 1, 2, 3, 4}.issubset(present)  # background, facade, window, door, cornice
    rows = nearest.reshape(128, 128)
    door_rows = np.nonzero((rows == 3).any(1))[0]
    assert door_rows.max() >= 120  # doors stand at street level


def test_one_label_map_has_many_photos():
    # The same layout rendered with two style draws gives two different photos, so
    # the mapping is one-to-many and an L1-only generator can only average them.
    labels = facade_labels(np.random.default_rng(0), 64)
    first = render_facade(labels, np.random.default_rng(1)).astype(float)
    second = render_facade(labels, np.random.default_rng(2)).astype(float)
    assert np.abs(first - second).mean() > 20
    np.testing.assert_array_equal(render_facade(labels, np.random.default_rng(1)), first)


def test_edges_are_thin_dark_lines_on_white(tmp_path):
    synthesize("edges2shapes", tmp_path, count=3, size=64)
    ab = np.asarray(Image.open(tmp_path / "train/1.jpg").convert("L")).astype(int)
    edges, photo = ab[:, :64], ab[:, 64:]
    dark = edges < 128
    assert 0.005 < dark.mean() < 0.15
    assert photo.std() > 10


def test_bad_arguments():
    with pytest.raises(Pix2PixError, match="count must be at least 3"):
        split_counts(2)
    with pytest.raises(Pix2PixError, match="unknown synthetic dataset 'cats'"):
        synthesize("cats", "/tmp/x")


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "1.jpg").write_bytes(b"a holiday photo")
    (tmp_path / "notes.txt").write_text("mine")
    before = _files(tmp_path)
    for out, reason in (
        (photos, "folder is not empty and was not written by pix2pix-tf data synth"),
        (tmp_path / "notes.txt", "is a file"),
    ):
        with pytest.raises(Pix2PixError, match=reason):
            synthesize("facades", out, count=3, size=32)
    assert _files(tmp_path) == before and not list(tmp_path.glob(".*"))
    assert main(["data", "synth", "facades", "--out", str(photos), "--count", "3", "--size", "32"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {photos}: folder is not empty and was not written by")


def test_a_rerun_replaces_its_own_dataset_whole(tmp_path):
    out = tmp_path / "data"
    synthesize("facades", out, count=10, size=32)
    synthesize("edges2shapes", out, count=5, size=32, seed=3)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg")) == [
        "test/1.jpg",
        "train/1.jpg",
        "train/2.jpg",
        "train/3.jpg",
        "val/1.jpg",
    ]  # no train/4.jpg..8.jpg left from the first run
    assert json.loads((out / MARKER).read_text())["name"] == "edges2shapes"
    assert not list(tmp_path.glob(".data.*"))
    # Without the marker, even a folder laid out like a synthetic dataset (e.g. a
    # downloaded one: train/1.jpg, ...) is not ours to replace.
    (out / MARKER).unlink()
    with pytest.raises(Pix2PixError, match="was not written by pix2pix-tf data synth"):
        synthesize("facades", out, count=3, size=32)
    with pytest.raises(Pix2PixError, match=r"seed must be a whole number in \[0, 4294967296\); got -1"):
        synthesize("facades", tmp_path / "new", count=3, size=32, seed=-1)


def test_a_full_disk_is_one_line_and_keeps_the_previous_dataset(tmp_path, monkeypatch):
    out = tmp_path / "data"
    synthesize("facades", out, count=3, size=32)
    before = _files(out)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)
    with pytest.raises(Pix2PixError) as caught:
        synthesize("facades", out, count=3, size=32, seed=1)
    assert str(caught.value) == (
        f"{out}: no space left on device while writing the synthetic facades dataset; the partial copy was "
        f"removed and {out} is as it was; free some space and rerun"
    )
    assert _files(out) == before and not list(tmp_path.glob(".data.*"))


def test_leftovers_of_a_killed_run_are_removed_or_put_back(tmp_path, monkeypatch, capsys):
    out = tmp_path / "data"
    synthesize("facades", out, count=3, size=32)
    before = _files(out)
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    host, gone = socket.gethostname(), process.pid
    # Killed between its two renames: its staging folder left, the dataset moved aside.
    (tmp_path / f".data.tmp-{host}-{gone}-2").mkdir()
    out.rename(tmp_path / f".data.old-{host}-{gone}-1")
    running = tmp_path / f".data.tmp-{host}-{os.getpid()}-3"  # a live writer's: kept
    running.mkdir()

    def crash(*args, **kwargs):
        raise RuntimeError("crashed")

    monkeypatch.setattr(Image.Image, "save", crash)  # this run fails too, after tidying up
    with pytest.raises(RuntimeError, match="crashed"):
        synthesize("facades", out, count=3, size=32, seed=1)
    assert _files(out) == before
    assert "put the previous one back from .data.old-" in capsys.readouterr().err
    assert [p.name for p in tmp_path.glob(".data.*")] == [running.name]


def test_example_datasets_are_written_once_and_different_ones_never_replace_each_other(tmp_path, capsys):
    small = example_dataset("facades", tmp_path, size=32, count=10)
    written = _digest(small)
    marker = (small / MARKER).stat().st_mtime_ns
    larger = example_dataset("facades", tmp_path, size=32, count=20)
    again = example_dataset("facades", tmp_path, size=32, count=10)
    assert again == small != larger and small.parent == larger.parent == tmp_path
    assert (small / MARKER).stat().st_mtime_ns == marker and _digest(small) == written  # reused, not rewritten
    assert len(list((larger / "train").glob("*.jpg"))) == 16 and len(list((small / "train").glob("*.jpg"))) == 8
    assert capsys.readouterr().out == ""
    # A folder of that name holding another dataset (or a half-written one) is replaced by the one asked for.
    json_marker = json.loads((small / MARKER).read_text())
    (small / MARKER).write_text(json.dumps({**json_marker, "count": 11}))
    assert _digest(example_dataset("facades", tmp_path, size=32, count=10)) == written
    assert example_dataset("edges2shapes", tmp_path, size=32, count=10, seed=3).name == "edges2shapes_32px_10_seed3"
