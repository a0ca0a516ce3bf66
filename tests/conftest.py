import io
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402


def write_image(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path, **kwargs)
    return path


@pytest.fixture
def inverse_pairs(tmp_path):
    """A combined-layout dataset where B = 255 - A pixelwise (lossless PNG).

    A is random noise, so any misalignment of A and B (a shifted crop, a mirror of
    one half only) breaks the relation.
    """
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 2)):
        for i in range(n):
            a = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
            write_image(tmp_path / split / f"{i}.png", np.concatenate([a, 255 - a], axis=1))
    return tmp_path


class LiveServer:
    """`pix2pix-tf serve` in its own process on a free 127.0.0.1 port."""

    def __init__(self, *args: str):
        from pix2pix_tf.serve import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pix2pix_tf", "serve", "--port", str(self.port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.communicate()[1][-2000:]
            try:
                if httpx.get(f"{self.url}/v1/models/pix2pix", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.3)
        self.stop()
        raise AssertionError("the server did not come up in 120 s")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def gif_frame_bomb(side: int, first=None) -> bytes:
    """A GIF with a 64 x 64 screen and first frame whose second frame is side x side.

    Pillow crops the frames it writes to the first one's size, so the large frame is
    spliced in from a GIF of its own: the format allows any frame size (up to 65535).
    """

    def blocks(data: bytes) -> tuple[bytes, bytes]:
        """(header with screen and colour table, the image blocks without the trailer)."""
        table = 3 * 2 ** ((data[10] & 7) + 1) if data[10] & 0x80 else 0
        start = 13 + table
        return data[:start], data[start:-1]

    def gif(image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, "GIF")
        return buffer.getvalue()

    first = first if first is not None else Image.new("RGB", (64, 64), (200, 30, 30))
    head, frame = blocks(gif(first.convert("RGB").quantize(16)))
    _, big = blocks(gif(Image.new("RGB", (side, side), (30, 30, 200)).quantize(2)))
    return head + frame + big + b";"
