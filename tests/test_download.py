import http.server
import io
import socket
import tarfile
import threading
import time

import numpy as np
import pytest
from conftest import write_image

from pix2pix_tf.data.download import DATASETS, download
from pix2pix_tf.errors import DataError


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
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                start = 0
                if "Range" in self.headers:
                    start = int(self.headers["Range"].split("=")[1].rstrip("-"))
                    server.ranges.append(start)
                body = server.payload[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}")
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


def test_no_network_fails_fast_with_manual_instructions(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"could not download .*place|could not download .*put it at"):
        download("facades", tmp_path, url=f"http://127.0.0.1:{port}/facades.tar.gz")
    assert time.perf_counter() - start < 5


def test_broken_archive_leaves_previous_data_untouched(tmp_path):
    write_image(tmp_path / "facades/train/keep.jpg", np.zeros((8, 16, 3)))
    (tmp_path / "facades.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(DataError, match="not a valid .tar.gz archive"):
        download("facades", tmp_path)
    assert (tmp_path / "facades/train/keep.jpg").exists()


def test_registry_covers_the_standard_datasets():
    assert set(DATASETS) == {"facades", "cityscapes", "maps", "edges2shoes", "edges2handbags", "night2day"}
    assert DATASETS["facades"].direction == "BtoA"
    assert DATASETS["maps"].url.endswith("/maps.tar.gz")
    with pytest.raises(DataError, match="unknown dataset 'cats'"):
        download("cats", "/tmp")
