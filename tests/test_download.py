import errno
import http.server
import io
import shutil
import socket
import tarfile
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import write_image

from pix2pix_tf.data.download import DATASETS, download
from pix2pix_tf.errors import DataError, Pix2PixError


def _archive(tmp_path, name="facades"):
    src = tmp_path / "src"
    for split in ("train", "val"):
        write_image(src / name / split / "1.jpg", np.zeros((8, 16, 3)))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(src / name, arcname=name)
    return buffer.getvalue()


class _Server:
    """A 127.0.0.1 HTTP server for one archive, with Range support and fault injection."""

    def __init__(self, payload):
        self.payload, self.ranges, self.cut_at = payload, [], None
        self.content_range = None  # a Content-Range to send instead of the right one ("" sends none)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                start = 0
                if "Range" in self.headers:
                    start = int(self.headers["Range"].split("=")[1].rstrip("-"))
                    server.ranges.append(start)
                body = server.payload[start:]
                self.send_response(206 if start else 200)
                content_range = f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}"
                if server.content_range is not None:
                    content_range = server.content_range
                if start and content_range:
                    self.send_header("Content-Range", content_range)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_at is not None:  # die mid-transfer
                    body, server.cut_at = body[: server.cut_at], None
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/facades.tar.gz"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def server(tmp_path):
    s = _Server(_archive(tmp_path))
    yield s
    s.close()


def test_download_and_extract_over_http(server, tmp_path):
    target = download("facades", tmp_path / "out", url=server.url)
    assert target == tmp_path / "out/facades"
    assert (target / "train/1.jpg").exists() and (target / "val/1.jpg").exists()
    assert not list((tmp_path / "out").glob(".facades-*"))  # no temporary folder left


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    server.cut_at = len(server.payload) // 2
    with pytest.raises(DataError, match="rerun to resume"):
        download("facades", tmp_path, url=server.url)
    part = tmp_path / "facades.tar.gz.part"
    assert part.stat().st_size == len(server.payload) // 2
    download("facades", tmp_path, url=server.url)
    assert server.ranges == [len(server.payload) // 2]
    assert (tmp_path / "facades.tar.gz").read_bytes() == server.payload
    assert (tmp_path / "facades/train/1.jpg").exists()


def test_file_url(tmp_path):
    archive = tmp_path / "mirror.tar.gz"
    archive.write_bytes(_archive(tmp_path))
    download("facades", tmp_path / "out", url=archive.as_uri())
    assert (tmp_path / "out/facades/train/1.jpg").exists()


def test_existing_archive_is_only_extracted(tmp_path):
    (tmp_path / "facades.tar.gz").write_bytes(_archive(tmp_path))
    download("facades", tmp_path, url="http://127.0.0.1:9/never-contacted")
    assert (tmp_path / "facades/train/1.jpg").exists()


@pytest.mark.parametrize("content_range", ["", "bytes */1234", "bytes 0-99/100"], ids=["none", "bad", "other start"])
def test_a_partial_reply_that_does_not_resume_where_asked_starts_over(server, tmp_path, content_range):
    server.cut_at = len(server.payload) // 2
    with pytest.raises(DataError, match="rerun to resume"):
        download("facades", tmp_path, url=server.url)
    server.content_range = content_range
    download("facades", tmp_path, url=server.url)
    # The resume request got a 206 that does not say it starts at the byte asked for:
    # appending it could corrupt the archive, so the download started over.
    assert server.ranges == [len(server.payload) // 2]
    assert (tmp_path / "facades.tar.gz").read_bytes() == server.payload
    assert (tmp_path / "facades/train/1.jpg").exists()


def test_no_network_fails_with_one_short_attempt_and_manual_instructions(tmp_path, monkeypatch):
    # Fast by construction, not by a stopwatch: one attempt, bounded by the timeout given.
    attempts, urlopen = [], urllib.request.urlopen

    def counted(request, timeout):
        attempts.append(timeout)
        return urlopen(request, timeout=timeout)

    monkeypatch.setattr(urllib.request, "urlopen", counted)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match=r"could not download http://127.0.0.1:\d+/facades.tar.gz: .*put it at"):
        download("facades", tmp_path, url=f"http://127.0.0.1:{port}/facades.tar.gz", timeout=0.5)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nobody ever answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/facades.tar.gz"
        with pytest.raises(DataError, match=r"could not download .*: timed out\. .*put it at"):
            download("facades", tmp_path, url=url, timeout=0.2)
    assert attempts == [0.5, 0.2]
    assert not list(tmp_path.iterdir())


def test_broken_archive_leaves_previous_data_untouched(tmp_path):
    (tmp_path / "facades.tar.gz").write_bytes(_archive(tmp_path / "src"))
    download("facades", tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "facades").rglob("*"))
    (tmp_path / "facades.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(DataError, match="not a valid .tar.gz archive"):
        download("facades", tmp_path)
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "facades").rglob("*")) == before


def _other_archive(tmp_path):
    """A second facades archive with other contents (and another size) than `_archive`'s."""
    write_image(tmp_path / "src2/src/facades/test/2.jpg", np.zeros((8, 16, 3)))
    return _archive(tmp_path / "src2")


def test_a_new_extraction_replaces_the_old_one_only_once_it_is_in_place(tmp_path, monkeypatch):
    (tmp_path / "facades.tar.gz").write_bytes(_archive(tmp_path / "src"))
    download("facades", tmp_path)
    (tmp_path / "facades.tar.gz").write_bytes(_other_archive(tmp_path))
    rename = Path.rename

    def failing_rename(self, target):
        if self.name.startswith(".facades.tmp-") and Path(target) == tmp_path / "facades":
            raise OSError(errno.EACCES, "Permission denied")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", failing_rename)
    with pytest.raises(Pix2PixError, match="could not move the new folder into place .*the previous one is unchanged"):
        download("facades", tmp_path)
    assert sorted(p.name for p in (tmp_path / "facades").glob("*/*")) == ["1.jpg", "1.jpg"]
    assert not list(tmp_path.glob(".facades*"))
    monkeypatch.undo()
    download("facades", tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "facades").glob("*/*")) == [
        "facades/test/2.jpg",
        "facades/train/1.jpg",
        "facades/val/1.jpg",
    ]


def test_never_replaces_a_folder_it_did_not_extract_and_keeps_later_changes(tmp_path, capsys):
    write_image(tmp_path / "facades/train/mine.jpg", np.zeros((8, 16, 3)))
    (tmp_path / "facades.tar.gz").write_bytes(_archive(tmp_path / "src"))
    with pytest.raises(
        Pix2PixError, match="facades: folder is not empty and was not written by pix2pix-tf data download"
    ):
        download("facades", tmp_path)
    assert [p.name for p in (tmp_path / "facades").rglob("*")] == ["train", "mine.jpg"]
    shutil.rmtree(tmp_path / "facades")
    download("facades", tmp_path)
    (tmp_path / "facades/val/1.jpg").unlink()  # the user cleans the dataset by hand
    capsys.readouterr()
    download("facades", tmp_path)  # the same archive again: nothing to extract
    assert "already holds facades.tar.gz; not extracted again" in capsys.readouterr().out
    assert not (tmp_path / "facades/val/1.jpg").exists()


def test_a_full_disk_says_so(server, tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", full)
    with pytest.raises(DataError, match=r"facades.tar.gz.part: no space left on device; free some space and rerun"):
        download("facades", tmp_path, url=server.url)
    monkeypatch.undo()
    (tmp_path / "facades.tar.gz").write_bytes(server.payload)
    download("facades", tmp_path)
    before = sorted(p.name for p in (tmp_path / "facades").rglob("*"))
    (tmp_path / "facades.tar.gz").write_bytes(_other_archive(tmp_path))
    monkeypatch.setattr(tarfile.TarFile, "extractall", full)
    with pytest.raises(Pix2PixError, match="facades: no space left on device while writing the facades dataset"):
        download("facades", tmp_path)
    assert sorted(p.name for p in (tmp_path / "facades").rglob("*")) == before
    assert not list(tmp_path.glob(".facades*"))


def test_registry_covers_the_standard_datasets():
    assert set(DATASETS) == {"facades", "cityscapes", "maps", "edges2shoes", "edges2handbags", "night2day"}
    assert DATASETS["facades"].direction == "BtoA"
    assert DATASETS["maps"].url.endswith("/maps.tar.gz")
    with pytest.raises(DataError, match="unknown dataset 'cats'"):
        download("cats", "/tmp")
