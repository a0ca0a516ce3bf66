"""The drawing page in a real browser: Playwright driving Debian's Chromium against `pix2pix-tf serve`."""

from pathlib import Path

import pytest
from conftest import LiveServer

pytestmark = pytest.mark.xdist_group("serve_page")  # one worker builds the module's shared fixtures

EXAMPLE = Path(__file__).resolve().parents[1] / "pix2pix_tf/webapp/static/examples/facade_2.png"

# Reads an <img> back through a canvas: its size and the standard deviation of its pixels.
IMAGE_STATS = """img => {
  const c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d"); g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let sum = 0, sq = 0, n = 0;
  for (let i = 0; i < d.length; i += 4) for (let k = 0; k < 3; k++) { sum += d[i + k]; sq += d[i + k] ** 2; n++; }
  return { width: c.width, height: c.height, std: Math.sqrt(sq / n - (sum / n) ** 2) };
}"""


@pytest.fixture(scope="module")
def server():
    server = LiveServer()
    yield server
    server.stop()


def _open(browser, url):
    page = browser.new_page()
    requests = []
    page.on("request", lambda r: requests.append((r.method, r.url)))
    page.goto(url)
    page.wait_for_selector('#tools button[data-tool="window"]')
    return page, requests


def _translate(page):
    page.click("#translate")
    # Functions, not expressions: the page's Content-Security-Policy forbids eval, which expressions use.
    page.wait_for_function("() => document.getElementById('output').naturalWidth > 0", timeout=30_000)
    return page.eval_on_selector("#output", IMAGE_STATS)


def test_draw_a_facade_with_the_palette_and_translate(browser, server):
    page, requests = _open(browser, server.url)
    assert page.locator("#tools button").count() == 12  # the CMP classes, in their label colours
    page.click("#clear")
    box = page.locator("#canvas").bounding_box()

    def drag(tool, x0, y0, x1, y1):
        page.click(f'#tools button[data-tool="{tool}"]')
        page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
        page.mouse.down()
        page.mouse.move(box["x"] + x1 * box["width"], box["y"] + y1 * box["height"], steps=5)
        page.mouse.up()

    for row in (0.2, 0.45):
        for col in (0.15, 0.45, 0.75):
            drag("window", col, row, col + 0.12, row + 0.15)
    drag("door", 0.4, 0.75, 0.6, 0.99)
    # The drawing is on the canvas in the palette's colours: window (0, 85, 255) pixels exist.
    windows = page.evaluate(
        """() => {
          const d = document.getElementById("canvas").getContext("2d").getImageData(0, 0, 64, 64).data;
          let n = 0;
          for (let i = 0; i < d.length; i += 4) if (d[i] === 0 && d[i + 1] === 85 && d[i + 2] === 255) n++;
          return n;
        }"""
    )
    assert windows > 100
    stats = _translate(page)
    assert (stats["width"], stats["height"]) == (64, 64)  # the model's size
    assert stats["std"] > 10  # a photo with structure, not a constant image
    assert page.text_content("#error") == ""
    # Besides the page and its own files (scripts, examples), it talks to the server through the public API only.
    loads = [r for r in requests if r == ("GET", f"{server.url}/") or r[1].startswith(f"{server.url}/web/")]
    assert [r for r in requests if r not in loads] == [("POST", f"{server.url}/v1/models/pix2pix:predict")]
    assert all(method == "GET" for method, _ in loads)
    assert page.get_attribute("#download", "href").startswith("data:image/png;base64,")
    page.close()


def test_upload_a_file_and_translate(browser, server):
    page, _ = _open(browser, server.url)
    page.click("#clear")
    blank = page.evaluate("() => document.getElementById('canvas').toDataURL()")
    page.set_input_files("#file", str(EXAMPLE))
    page.wait_for_function(f"() => document.getElementById('canvas').toDataURL() !== {blank!r}")
    stats = _translate(page)
    assert (stats["width"], stats["height"]) == (64, 64) and stats["std"] > 10
    page.close()


def test_a_phone_photo_is_drawn_and_translated_upright(browser, server, tmp_path):
    from test_images import oriented_jpeg

    photo = tmp_path / "phone.jpg"
    photo.write_bytes(oriented_jpeg(6, "MPO"))  # stored sideways with EXIF orientation 6, a second picture along
    page, _ = _open(browser, server.url)
    page.click("#clear")
    blank = page.evaluate("() => document.getElementById('canvas').toDataURL()")
    page.set_input_files("#file", str(photo))
    page.wait_for_function(f"() => document.getElementById('canvas').toDataURL() !== {blank!r}")
    corners = page.evaluate(
        """() => {
          const c = document.getElementById("canvas"), g = c.getContext("2d");
          const at = (x, y) => Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3));
          return [at(1, 1), at(c.width - 2, c.height - 2)];
        }"""
    )
    # Upright: red at the top left, green at the bottom right (sideways, both corners would be blue).
    assert corners[0][0] > 180 and corners[0][2] < 80 and corners[1][1] > 150 and corners[1][0] < 80, corners
    stats = _translate(page)
    assert (stats["width"], stats["height"]) == (64, 64) and stats["std"] > 10
    page.close()


def test_api_errors_appear_on_the_page_in_words(browser):
    small = LiveServer("--max-pixels", "1000")  # a 64 x 64 drawing is 4096 pixels
    try:
        page, _ = _open(browser, small.url)
        page.click("#translate")
        page.wait_for_function("() => document.getElementById('error').textContent.length > 0", timeout=30_000)
        assert "the server said (413)" in page.text_content("#error")
        assert "over the limit" in page.text_content("#error") or "limit is 1000" in page.text_content("#error")
        page.close()
    finally:
        small.stop()
