"""The static web app driven in a headless Chromium: what LiteRT.js in a browser makes of an image.

For notebooks and checks that want the in-browser output beside the Python runtimes'.
It needs Playwright (`pip install playwright`, part of the test extras) and a Chromium
binary (Debian's `chromium`); `browser_available()` says whether both are here. The app
is served from 127.0.0.1 by Python's own `http.server`, as a reader would serve it.
"""

from __future__ import annotations

import concurrent.futures
import functools
import http.server
import importlib.util
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pix2pix_tf.errors import Pix2PixError

TIMEOUT_MS = 120_000
# True once the page has stopped loading a model (its status line's state).
NOT_LOADING = "() => document.getElementById('status').dataset.state !== 'loading'"
# The page's canvas set to RGBA pixels ([data, size]), and an <img> read back as [width, RGBA values].
PUT_CANVAS = """([data, size]) => {
  const image = new ImageData(new Uint8ClampedArray(data), size, size);
  document.getElementById("canvas").getContext("2d").putImageData(image, 0, 0);
}"""
READ_IMAGE = """async img => {
  await img.decode();
  const c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d"); g.drawImage(img, 0, 0);
  return [c.width, Array.from(g.getImageData(0, 0, c.width, c.height).data)];
}"""


def chromium() -> str | None:
    """The Chromium binary on PATH (Debian's `chromium`), if any."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browser_available() -> str | None:
    """None if the app can be driven here, else why not (one line)."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed (pip install playwright)"
    if chromium() is None:
        return "no Chromium binary on PATH (Debian: apt-get install chromium)"
    return None


@dataclass(frozen=True)
class BrowserResult:
    """The page's output and its status line ("in this browser: float16 on wasm, ...; this run 4.2 ms")."""

    image: np.ndarray
    status: str


def translate_in_browser(web_dir: str | Path, image: np.ndarray, variant: str | None = None) -> BrowserResult:
    """Translates `image` with the web app in `web_dir` as a reader's browser would.

    Args:
        web_dir: a folder written by `pix2pix-tf web` (or `export --web`).
        image: uint8 RGB at the model's size (S, S, 3).
        variant: the .tflite variant to pick on the page; None keeps the page's default.

    Raises:
        Pix2PixError: no Playwright or Chromium here, or the page reports an error.
    """
    missing = browser_available()
    if missing:
        raise Pix2PixError(f"cannot run the web app in a browser here: {missing}")
    # Playwright's sync API refuses a thread that runs an asyncio loop, as a Jupyter kernel's does.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(_translate, Path(web_dir), image, variant).result()


def _translate(web_dir: Path, image: np.ndarray, variant: str | None) -> BrowserResult:
    from playwright.sync_api import sync_playwright

    size = image.shape[0]
    rgba = np.concatenate([image, np.full((size, size, 1), 255, np.uint8)], -1)
    server = StaticServer(web_dir)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
            try:
                page = browser.new_page()
                page.goto(server.url + "/")
                _wait(page, NOT_LOADING)
                if variant is not None and page.input_value("#variant") != variant:
                    page.select_option("#variant", variant)
                    _wait(page, NOT_LOADING)
                page.evaluate(PUT_CANVAS, [rgba.ravel().tolist(), size])
                page.click("#translate")
                _wait(page, "() => document.getElementById('output').dataset.runs === '1'")
                width, pixels = page.eval_on_selector("#output", READ_IMAGE)
                status = page.text_content("#status")
            finally:
                browser.close()
    finally:
        server.stop()
    return BrowserResult(np.array(pixels, np.uint8).reshape(width, width, 4)[..., :3], status)


def _wait(page, condition: str) -> None:
    page.wait_for_function(f"() => ({condition})() || document.getElementById('error').textContent", timeout=TIMEOUT_MS)
    error = page.text_content("#error")
    if error:
        raise Pix2PixError(f"the web app says: {error}")


class StaticServer:
    """A folder on a free 127.0.0.1 port, served by `python -m http.server`'s handler in a thread.

    Args:
        root: the folder.
        headers: added to every reply (serve's COOP/COEP headers make its pages cross-origin isolated).
    """

    def __init__(self, root: str | Path, headers: dict[str, str] | None = None):
        extra = dict(headers or {})

        class Handler(http.server.SimpleHTTPRequestHandler):
            def end_headers(self) -> None:
                for name, value in extra.items():
                    self.send_header(name, value)
                super().end_headers()

            def log_message(self, *args) -> None:  # no line per request in a notebook
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
