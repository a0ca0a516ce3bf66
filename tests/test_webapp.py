"""The static web app (`pix2pix-tf web`, `export --web`) and serve's "in this browser": the writer, the
CLI, and the page in Debian's Chromium (Playwright) running the .tflite files on LiteRT.js.

The runtime is the per-user cache's (`webapp.runtime.cached()`): tests never download it. Without it
the tests that need it skip, or fail when CI is set (.ci/run fetches it before the tests).
"""

import asyncio
import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import httpx
import numpy as np
import pytest
from conftest import LiveServer
from PIL import Image

from pix2pix_tf.artifacts.exportdir import ExportDir
from pix2pix_tf.artifacts.webdir import RuntimeDir, WebDir
from pix2pix_tf.data.synthetic import FACADE_PALETTE
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.export import export as export_model
from pix2pix_tf.inference import as_image, load
from pix2pix_tf.shipped import shipped_model
from pix2pix_tf.webapp import runtime, site
from pix2pix_tf.webapp.headless import NOT_LOADING, PUT_CANVAS, READ_IMAGE
from pix2pix_tf.webapp.page import BROWSER_SCRIPTS

pytestmark = pytest.mark.xdist_group("webapp")  # one worker builds the module's shared fixtures

# Agreement with the Python interpreter, PSNR of the uint8 outputs (dB): the gates.
GATES = {"float32": 40.0, "float16": 40.0, "int8": 28.0, "dynamic": 28.0}

# The page's canvas read back: RGBA values, row-major.
READ_CANVAS = """() => {
  const c = document.getElementById("canvas");
  return Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data);
}"""
# The browser runner's pre- and post-processing, called directly.
TO_MODEL = "async ([rgba, c]) => Array.from((await import('./run_browser.js')).toModel(new Uint8Array(rgba), c))"
TO_PIXELS = (
    "async ([y, c, s]) => Array.from((await import('./run_browser.js')).toPixels(new Float32Array(y), c, s).data)"
)
RUNTIME_LOG = ("INFO: ", "WARNING: ")


@pytest.fixture(scope="module")
def litert():
    """The cached LiteRT.js runtime folder."""
    found = runtime.cached()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(
                "the LiteRT.js runtime is not cached in CI: .ci/run must run `python -m pix2pix_tf.webapp.runtime`"
            )
        pytest.skip("the LiteRT.js runtime is not cached: fetch it once with `python -m pix2pix_tf.webapp.runtime`")
    return found


class StaticServer:
    """`python -m http.server` on a free 127.0.0.1 port, serving one folder: no other server runs for the page."""

    def __init__(self, root):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/", timeout=1)
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise AssertionError("http.server did not come up") from None
                time.sleep(0.1)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def sites(tmp_path_factory, tiny_export, litert):
    """The web apps of the session's tiny export (32 px, four variants) and of the shipped model (64 px, two)."""
    root = tmp_path_factory.mktemp("web")
    return {
        "tiny": (site.write_site(tiny_export, root / "tiny"), ExportDir(tiny_export)),
        "shipped": (site.write_site(shipped_model(), root / "shipped"), ExportDir(shipped_model())),
    }


@pytest.fixture(scope="module", params=["tiny", "shipped"])
def served_site(request, sites):
    """(web app folder, its export, its http.server URL)."""
    folder, export = sites[request.param]
    server = StaticServer(folder)
    yield folder, export, server.url
    server.stop()


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _guarded_page(browser, url):
    """A page in a context of its own where every request (its workers' too) passes a guard that lets
    through only `url`'s origin: any other is aborted and logged in log["foreign"]."""
    context = browser.new_context()
    log = {"requests": [], "foreign": [], "failed": [], "errors": []}

    def guard(route):
        if _origin(route.request.url) == _origin(url):
            route.continue_()
        else:
            log["foreign"].append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", guard)
    context.on("request", lambda r: log["requests"].append(r.url))
    context.on("requestfailed", lambda r: r.url not in log["foreign"] and log["failed"].append(r.url))
    context.on("response", lambda r: r.status >= 400 and log["failed"].append(f"{r.status} {r.url}"))
    return context.new_page(), log


def _open(browser, url, init_script=None):
    """The page (see `_guarded_page`), loaded and its default model ready (or failed), with a log of every
    request, failure and error; `init_script` runs before the page's own. Close it with page.context.close()."""
    page, log = _guarded_page(browser, url)
    if init_script:
        page.add_init_script(init_script)
    page.on("pageerror", lambda e: log["errors"].append(str(e)))
    # The wasm runtime writes its own INFO and WARNING lines through console.error.
    page.on(
        "console",
        lambda m: m.type == "error" and not m.text.startswith(RUNTIME_LOG) and log["errors"].append(m.text),
    )
    page.goto(url + "/")
    page.wait_for_function(NOT_LOADING, timeout=120_000)
    return page, log


def _translate(page) -> np.ndarray:
    """Clicks translate; the output as uint8 (H, W, 3)."""
    runs = int(page.get_attribute("#output", "data-runs") or 0)
    page.click("#translate")
    page.wait_for_function(
        f"() => document.getElementById('output').dataset.runs === '{runs + 1}' "
        "|| document.getElementById('status').dataset.state === 'error'",
        timeout=60_000,
    )
    assert page.text_content("#error") == ""
    width, rgba = page.eval_on_selector("#output", READ_IMAGE)
    return np.array(rgba, np.uint8).reshape(width, width, 4)[..., :3]


def _choose(page, variant):
    page.select_option("#variant", variant)
    page.wait_for_function(NOT_LOADING, timeout=120_000)
    assert page.text_content("#error") == "", page.text_content("#error")
    assert f"in this browser: {variant} on wasm" in page.text_content("#status")


def _inputs(size: int) -> list[np.ndarray]:
    """Three uint8 RGB inputs: uniform noise, a label map of facade-palette blocks, a smooth gradient."""
    rng = np.random.default_rng(size)
    noise = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    labels = np.broadcast_to(FACADE_PALETTE[1], (size, size, 3)).copy()
    for _ in range(12):
        y, x = rng.integers(0, size, 2)
        h, w = rng.integers(size // 8, size // 2, 2)
        labels[y : y + h, x : x + w] = FACADE_PALETTE[rng.integers(0, len(FACADE_PALETTE))]
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    gradient = np.stack([xx, yy, np.sin(6 * xx * yy) / 2 + 0.5], -1) * 255
    return [noise, labels.astype(np.uint8), np.round(gradient).astype(np.uint8)]


def psnr(a, b) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


# --- the writer and the CLI --------------------------------------------------------------
def test_the_app_holds_the_page_the_variants_and_the_runtime(sites, tiny_export):
    folder, export = sites["tiny"]
    web = WebDir(folder)
    manifest = json.loads(web.manifest.read_text())
    assert (manifest["name"], manifest["image_size"], manifest["channels"]) == (tiny_export.name, 32, 3)
    assert (manifest["direction"], manifest["tools"], manifest["runners"]) == ("BtoA", "facade_labels", ["browser"])
    assert len(manifest["palette"]) == 12 and manifest["examples"]
    assert all((folder / path).is_file() for path in manifest["examples"])
    assert [v["variant"] for v in manifest["variants"]] == ["float32", "float16", "int8", "dynamic"]
    for entry in manifest["variants"]:
        copy = folder / entry["file"]
        assert copy == web.model(entry["variant"])
        assert (
            copy.read_bytes() == export.tflite(entry["variant"]).read_bytes() and entry["bytes"] == copy.stat().st_size
        )
        assert "serving_default" in entry["signatures"]  # what the page runs, read from the file
    assert manifest["runtime"]["version"] == runtime.VERSION
    assert manifest["runtime"]["npm_integrity"] == runtime.PINNED[f"{runtime.LITERT_JS}@{runtime.VERSION}"]
    assert all(path.is_file() for path in web.runtime.files) and not web.runtime.stamp.exists()
    assert all(web.script(name).is_file() for name in BROWSER_SCRIPTS)
    assert json.loads(web.marker.read_text())["model"] == tiny_export.name  # what a rewrite may replace
    page = web.page.read_text()
    assert '"@litertjs/wasm-utils": "./litert/wasm-utils.js"' in page and 'src="./page.js"' in page
    assert f'data-manifest="{web.manifest.name}"' in page  # where page.js finds the manifest
    assert "{{" not in page  # every placeholder filled
    # Nothing in the app names another origin: no CDN, no absolute URL.
    for path in [web.page, web.manifest, *(web.script(name) for name in BROWSER_SCRIPTS)]:
        assert "http://" not in path.read_text() and "https://" not in path.read_text(), path


def test_a_failed_write_leaves_the_previous_app_and_a_foreign_folder_is_refused(
    sites, tiny_export, tmp_path, monkeypatch
):
    out = tmp_path / "web"
    shutil.copytree(sites["tiny"][0], out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))

    def broken(dest):
        raise OSError("simulated failure while copying the runtime")

    monkeypatch.setattr(runtime, "copy_to", broken)
    with pytest.raises(Pix2PixError, match=r"web: could not write the web app \(simulated failure"):
        site.write_site(tiny_export, out)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert not list(tmp_path.glob(".web.*"))  # no staging folder left beside it

    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"mine")
    with pytest.raises(Pix2PixError, match="not written by pix2pix-tf web"):
        site.write_site(tiny_export, foreign)
    assert [p.name for p in foreign.iterdir()] == ["holiday.jpg"]


def test_an_export_without_tflite_or_a_damaged_one_is_one_clear_error(tiny_export, tmp_path, litert):
    export = tmp_path / "exp"
    shutil.copytree(tiny_export, export)
    ExportDir(export).tflite("int8").write_bytes(b"not a model")
    with pytest.raises(Pix2PixError, match="generator_int8.tflite: not a TFLite model"):
        site.write_site(export, tmp_path / "web")
    for variant in ExportDir(export).variants:
        ExportDir(export).tflite(variant).unlink()
    with pytest.raises(Pix2PixError, match="has no .tflite model"):
        site.write_site(export, tmp_path / "web")
    assert not (tmp_path / "web").exists()


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "pix2pix_tf", *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_cli_writes_the_app_into_the_export_by_default(tiny_export, tmp_path, litert):
    export = tmp_path / "exp"
    shutil.copytree(tiny_export, export)
    result = _cli("web", str(export))
    assert result.returncode == 0, result.stderr
    assert ExportDir(export).web.page.is_file() and ExportDir(export).web.runtime.module.is_file()
    assert str(ExportDir(export).web.root) in result.stdout
    shipped = _cli("web", "--shipped")  # its folder is the installed package's: never written into
    assert shipped.returncode == 2 and shipped.stderr.strip() == (
        "error: --shipped needs --out DIR: the shipped model's folder is part of the installed package"
    )
    assert not ExportDir(shipped_model()).web.root.exists()


def test_the_shipped_models_folder_given_as_a_path_is_refused_without_out(tmp_path, monkeypatch, capsys):
    from pix2pix_tf.cli import main

    def write_nothing(*args, **kwargs):
        raise AssertionError("pix2pix-tf web would have written into the installed package")

    monkeypatch.setattr(site, "staged_output", write_nothing)  # a regression fails here, writing nothing
    link = tmp_path / "demo"
    link.symlink_to(shipped_model(), target_is_directory=True)
    for path in (shipped_model(), link):
        assert main(["web", str(path)]) == 2
        assert capsys.readouterr().err == (
            f"error: {path}: is the shipped model's folder, part of the installed package: "
            "write its web app elsewhere with --out DIR\n"
        )
    assert not ExportDir(shipped_model()).web.root.exists()


def test_an_out_that_cannot_be_written_is_one_line_naming_it_and_why(tmp_path):
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("not a folder")
    cases = {
        a_file / "sub": f"cannot write the web app there ({a_file} is not a folder); choose another folder",
        "/proc/pix2pix_tf_web_test": "cannot write the web app there (No such file or directory); choose another",
    }
    for out, reason in cases.items():
        result = _cli("web", "--shipped", "--out", str(out))
        assert result.returncode == 2 and result.stderr.startswith(f"error: {out}: {reason}"), result.stderr
        assert len(result.stderr.splitlines()) == 1 and "unexpected" not in result.stderr
    assert a_file.read_text() == "not a folder" and not list(tmp_path.glob(".sub*"))


def test_without_npm_or_a_cached_runtime_the_rest_is_written_and_one_line_says_why(tmp_path):
    empty_bin, cache = tmp_path / "bin", tmp_path / "cache"
    empty_bin.mkdir()
    cache.mkdir()
    env = {**os.environ, "PATH": str(empty_bin), "PIX2PIX_TF_CACHE": str(cache)}
    result = _cli("web", "--shipped", "--out", str(tmp_path / "web"), env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "npm is not on PATH" in lines[0], result.stderr
    web = WebDir(tmp_path / "web")
    assert web.page.is_file() and web.manifest.is_file() and web.model("float16").is_file()
    assert not web.runtime.root.exists() and not any(cache.iterdir())


def test_export_with_web_writes_the_export_then_says_the_runtime_is_missing(trained_workdir, tmp_path):
    empty_bin, cache = tmp_path / "bin", tmp_path / "cache"
    empty_bin.mkdir()
    cache.mkdir()
    env = {**os.environ, "PATH": str(empty_bin), "PIX2PIX_TF_CACHE": str(cache)}
    out = tmp_path / "exp"
    args = ["export", "--workdir", str(trained_workdir), "--out", str(out), "--tflite", "float16", "--web"]
    result = _cli(*args, "--threads", "1", env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: the LiteRT.js runtime")
    export = ExportDir(out)
    assert export.holds_export and export.variants == ["float16"]
    manifest = json.loads(export.web.manifest.read_text())
    assert manifest["name"] == "exp" and [v["variant"] for v in manifest["variants"]] == ["float16"]
    assert export.web.model("float16").read_bytes() == export.tflite("float16").read_bytes()
    assert not export.web.runtime.root.exists()
    with pytest.raises(Pix2PixError, match="at least one"):
        export_model(trained_workdir, tmp_path / "x", tflite=(), web=True)
    assert not (tmp_path / "x").exists()


# --- the page in Chromium, served by `python -m http.server` ------------------------------
def test_every_variant_agrees_with_the_python_interpreter(browser, served_site):
    folder, export, url = served_site
    page, log = _open(browser, url)
    size = json.loads(WebDir(folder).manifest.read_text())["image_size"]
    figures = {}
    for variant in export.variants:
        _choose(page, variant)
        translator = load(export.tflite(variant), num_threads=1)  # ai_edge_litert, the Python Translator
        figures[variant] = []
        for image in _inputs(size):
            rgba = np.concatenate([image, np.full((size, size, 1), 255, np.uint8)], -1)
            page.evaluate(PUT_CANVAS, [rgba.ravel().tolist(), size])
            on_canvas = np.array(page.evaluate(READ_CANVAS), np.uint8).reshape(size, size, 4)[..., :3]
            assert np.array_equal(on_canvas, image)  # the page translates exactly these pixels
            figures[variant].append(psnr(_translate(page), translator(image)))
        assert min(figures[variant]) >= GATES[variant], figures
    print(f"\n{export.root.name}: PSNR (dB) browser vs Python interpreter, 3 inputs: {figures}")
    assert not log["foreign"] and not log["failed"] and not log["errors"], log
    page.context.close()


def test_the_pages_pre_and_post_processing_are_the_translators(browser, sites):
    import tensorflow as tf

    from pix2pix_tf.data.pipeline import image_to_model, to_uint8

    size, rng = 16, np.random.default_rng(0)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    rgba = np.concatenate([image, np.full((size, size, 1), 255, np.uint8)], -1).ravel().tolist()
    # Outputs beyond [-1, 1], and exact halves between two levels (tf.round rounds them to even).
    y = rng.uniform(-1.2, 1.2, (size, size, 3)).astype(np.float32)
    y.flat[:8] = (np.arange(8) + 100.5) / np.float32(127.5) - 1
    server = StaticServer(sites["tiny"][0])
    page = browser.new_page()
    try:
        page.goto(server.url + "/")
        for channels in (3, 1):
            model_input = page.evaluate(TO_MODEL, [rgba, channels])
            expected = image_to_model(as_image(image, channels), size).numpy()
            assert np.array_equal(np.array(model_input, np.float32).reshape(expected.shape), expected), channels
            flat = y[..., :channels].ravel().tolist()
            pixels = page.evaluate(TO_PIXELS, [flat, channels, size])
            expected = np.broadcast_to(to_uint8(tf.constant(y[..., :channels])).numpy(), (size, size, 3))
            assert np.array_equal(np.array(pixels, np.uint8).reshape(size, size, 4)[..., :3], expected), channels
    finally:
        page.close()
        server.stop()


def _upload_files(folder):
    """Files `pix2pix-tf predict` would resize: (name, upright (width, height)) -> written into `folder`."""
    rng = np.random.default_rng(20)
    yy, xx = np.mgrid[0:70, 0:100] / 70
    wide = np.stack([xx * 200, yy * 255, 128 + 100 * np.sin(9 * xx * yy)], -1) + rng.normal(0, 20, (70, 100, 3))
    rgba = rng.integers(0, 256, (120, 80, 4), dtype=np.uint8)  # colours under the transparent areas, too
    rgba[:, :40, 3] = 0
    rgba[:30, 40:, 3] = 128
    rgba[30:, 40:, 3] = 255
    upright = np.clip(wide[:60, :90] + 30, 0, 255).astype(np.uint8)  # 90 x 60 as stored, 60 x 90 upright
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    grey = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    files = {
        ("wide.png", (100, 70)): lambda path: Image.fromarray(np.clip(wide, 0, 255).astype(np.uint8)).save(path),
        ("alpha.png", (80, 120)): lambda path: Image.fromarray(rgba, "RGBA").save(path),
        ("rotated.jpg", (60, 90)): lambda path: Image.fromarray(upright).save(path, quality=95, exif=exif),
        ("grey.png", (50, 40)): lambda path: Image.fromarray(grey, "L").save(path),
    }
    for (name, _), write in files.items():
        write(folder / name)
    return [(folder / name, size) for name, size in files]


def _upload(page, path, width, height, size) -> np.ndarray:
    """Uploads `path` with the page's file input; the canvas's RGBA once the page says it holds it."""
    page.set_input_files("#file", str(path))
    note = f"{path.name}, resized from {width}×{height}"
    page.wait_for_function(f"() => document.getElementById('input-note').textContent === {note!r}")
    return np.array(page.evaluate(READ_CANVAS), np.uint8).reshape(size, size, 4)


# A browser without WebGL for pages (some privacy settings, old devices): image.js reads a 2D canvas instead.
NO_WEBGL = """OffscreenCanvas.prototype.getContext = (get => function (type, ...rest) {
  return type === "webgl" ? null : get.call(this, type, ...rest);
})(OffscreenCanvas.prototype.getContext);"""


def test_an_upload_of_another_size_becomes_the_python_translators_input(browser, sites, tmp_path):
    """Uploads of other sizes, with alpha, EXIF orientation or grey, at the model's size on the canvas as
    image_to_model makes them (the canvas holds 8 bits: within half a level), and translated alike."""
    from pix2pix_tf.data.pipeline import image_to_model, to_uint8

    folder, export = sites["tiny"]
    translator = load(export.tflite("float16"), num_threads=1)
    files = _upload_files(tmp_path)
    expected = {path.name: image_to_model(as_image(str(path), 3), 32).numpy() for path, _ in files}
    server = StaticServer(folder)
    try:
        page, log = _open(browser, server.url)
        page.wait_for_function("() => document.getElementById('input-note').textContent !== ''")  # the example
        inputs, outputs = {}, {}
        for path, (width, height) in files:
            canvas = _upload(page, path, width, height, 32)
            assert (canvas[..., 3] == 255).all()
            inputs[path.name] = psnr(canvas[..., :3], (expected[path.name] + 1) * 127.5)
            reference = to_uint8(translator.run(expected[path.name][None])[0]).numpy()  # before resizing back
            outputs[path.name] = psnr(_translate(page), reference)
        print(f"\nuploads at 32 px, PSNR (dB) vs the Python Translator: input {inputs}; float16 output {outputs}")
        assert min(inputs.values()) >= 40 and min(outputs.values()) >= 40, (inputs, outputs)
        assert not log["foreign"] and not log["failed"] and not log["errors"], log
        page.context.close()

        page, _ = _open(browser, server.url, init_script=NO_WEBGL)
        for path, (width, height) in files:
            canvas = _upload(page, path, width, height, 32)
            if path.name == "alpha.png":  # a 2D canvas premultiplies: fully transparent pixels read black
                assert canvas[:, :12, :3].max() == 0  # (so this is the fallback that ran)
            else:
                assert psnr(canvas[..., :3], (expected[path.name] + 1) * 127.5) >= 40, path.name
        page.context.close()
    finally:
        server.stop()


# README's example of the uint8 signature in the browser, as written there but for loadLiteRt,
# which the page has called already.
README_UINT8 = """async ([rgb, S, file]) => {
  const { loadAndCompile, Tensor } = await import('./litert/litert.js');
  const bytes = await (await fetch(file)).arrayBuffer();
  const model = await loadAndCompile(new Uint8Array(bytes), { accelerator: 'wasm' });
  const image = new Tensor(new Uint8Array(rgb), [1, S, S, 3]);
  const { output_image } = await model.run('translate_image', { image });
  const pixels = output_image.toTypedArray();
  image.delete(); output_image.delete(); model.delete();
  return [pixels.constructor.name, Array.from(pixels)];
}"""


def test_the_uint8_signature_runs_in_the_browser_as_in_the_python_interpreter(browser, sites):
    from ai_edge_litert.interpreter import Interpreter

    folder, export = sites["tiny"]
    server = StaticServer(folder)
    try:
        page, log = _open(browser, server.url)
        figures = {}
        for variant in export.variants:
            run = Interpreter(model_path=str(export.tflite(variant)), num_threads=1).get_signature_runner(
                "translate_image"
            )
            figures[variant] = []
            for image in _inputs(32):
                kind, pixels = page.evaluate(
                    README_UINT8, [image.ravel().tolist(), 32, WebDir(".").model(variant).as_posix()]
                )
                expected = run(image=image[None])["output_image"][0]
                assert kind == "Uint8Array"
                figures[variant].append(psnr(np.array(pixels, np.uint8).reshape(expected.shape), expected))
        print(f"\ntranslate_image (uint8) in the browser vs ai-edge-litert, PSNR (dB): {figures}")
        assert figures["float16"] == figures["float32"] == [float("inf")] * 3  # README: the same bytes
        assert all(min(values) >= GATES[variant] for variant, values in figures.items()), figures
        assert not log["foreign"] and not log["failed"] and not log["errors"], log
        page.context.close()
    finally:
        server.stop()


def test_a_damaged_manifest_or_a_model_of_another_size_is_a_message_on_the_page(browser, sites, tmp_path):
    folder, _ = sites["tiny"]
    copy = _broken_copy(folder, tmp_path, "bad")
    manifest = WebDir(copy).manifest
    good = manifest.read_text()
    server = StaticServer(copy)
    try:
        for text, message in [
            (good[: len(good) // 2], "web.json is damaged ("),  # cut short
            (json.dumps({"name": "tiny"}), 'web.json is damaged (it has no "image_size")'),
            (None, "web.json: HTTP 404"),
        ]:
            if text is None:
                manifest.unlink()
            else:
                manifest.write_text(text)
            page, _ = _open(browser, server.url)
            assert page.get_attribute("#status", "data-state") == "error"
            assert page.text_content("#error").startswith(message), page.text_content("#error")
            page.context.close()
        # A valid .tflite of another model: the shipped model's 64 px float16 where the 32 px one was.
        manifest.write_text(good)
        shutil.copyfile(ExportDir(shipped_model()).tflite("float16"), WebDir(copy).model("float16"))
        page, _ = _open(browser, server.url)
        assert page.text_content("#error") == (
            "models/generator_float16.tflite: its serving_default signature takes float32 [1,64,64,3], "
            "not float32 [1,32,32,3] as this model's page sends"
        )
        page.context.close()
    finally:
        server.stop()


def test_export_web_on_a_trained_workdir_gives_an_app_that_translates_a_drawing(
    browser, trained_workdir, tmp_path, litert
):
    """The issue's "done when": `pix2pix-tf export --web`, the folder served by `python -m http.server`
    alone, a drawing translated in Chromium as the Python interpreter translates it."""
    out = tmp_path / "exp"
    args = ["export", "--workdir", str(trained_workdir), "--out", str(out), "--tflite", "float16", "--web"]
    result = _cli(*args, "--threads", "1")
    assert result.returncode == 0, result.stderr
    export = ExportDir(out)
    server = StaticServer(export.web.root)
    try:
        page, log = _open(browser, server.url)
        assert page.text_content("#error") == "" and "in this browser: float16 on wasm" in page.text_content("#status")
        figure = _translates_a_drawing(page, log, export.tflite("float16"), 32)
        print(f"\nexport --web, a drawing in Chromium: PSNR {figure:.1f} dB vs the Python interpreter")
        page.context.close()
    finally:
        server.stop()


def _draw_facade(page, size: int) -> np.ndarray:
    """Clears the canvas and drags two windows and a door with the mouse; the canvas's RGB after."""
    page.click("#clear")
    box = page.locator("#canvas").bounding_box()
    for tool, (x0, y0, x1, y1) in [
        ("window", (0.2, 0.2, 0.4, 0.4)),
        ("window", (0.6, 0.2, 0.8, 0.4)),
        ("door", (0.4, 0.7, 0.6, 0.99)),
    ]:
        page.click(f'#tools button[data-tool="{tool}"]')
        page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
        page.mouse.down()
        page.mouse.move(box["x"] + x1 * box["width"], box["y"] + y1 * box["height"], steps=5)
        page.mouse.up()
    drawing = np.array(page.evaluate(READ_CANVAS), np.uint8).reshape(size, size, 4)[..., :3]
    assert (drawing == FACADE_PALETTE[2]).all(-1).sum() > size  # window pixels, in the palette's colour
    return drawing


def _translates_a_drawing(page, log, tflite, size) -> float:
    """Draws, translates, checks the output against the Python interpreter's; returns the PSNR (dB)."""
    drawing = _draw_facade(page, size)
    output = _translate(page)
    assert output.shape == (size, size, 3) and output.std() > 5  # a picture, not a flat fill
    figure = psnr(output, load(tflite, num_threads=1)(drawing))
    assert figure >= 40
    status = page.text_content("#status")
    assert "this run" in status and " ms" in status
    assert not log["foreign"] and not log["failed"] and not log["errors"], log
    return figure


def test_the_page_translates_a_drawing_and_asks_only_its_own_origin(browser, served_site):
    folder, export, url = served_site
    page, log = _open(browser, url)
    size = json.loads(WebDir(folder).manifest.read_text())["image_size"]
    _translates_a_drawing(page, log, export.tflite(page.input_value("#variant")), size)
    # http.server sends no COOP/COEP: not cross-origin isolated, so the single-threaded build.
    assert page.evaluate("() => self.crossOriginIsolated") is False
    assert "1 thread (the server sends no COOP/COEP headers" in page.text_content("#status")
    assert any(u.endswith("/litert/wasm/litert_wasm_internal.wasm") for u in log["requests"])
    assert all(u.startswith(url + "/") for u in log["requests"]), log["requests"]
    page.context.close()


def test_the_origin_guard_sees_and_blocks_requests_of_the_page_and_of_its_workers(browser, sites):
    """The guard every page test runs under: it would catch a CDN, from the page or from a worker."""
    server = StaticServer(sites["tiny"][0])
    try:
        page, log = _guarded_page(browser, server.url)
        page.goto(server.url + "/")
        outcome = page.evaluate("""async () => {
          const page = await fetch("http://192.0.2.1/from-page.js").then(() => "fetched", () => "blocked");
          const code = 'fetch("http://192.0.2.2/from-worker.js")'
            + '.then(() => postMessage("fetched"), () => postMessage("blocked"))';
          const worker = new Worker(URL.createObjectURL(new Blob([code], {type: "text/javascript"})));
          const inWorker = await new Promise(done => { worker.onmessage = event => done(event.data); });
          return [page, inWorker];
        }""")
        assert outcome == ["blocked", "blocked"]
        assert log["foreign"] == ["http://192.0.2.1/from-page.js", "http://192.0.2.2/from-worker.js"]
        page.context.close()
    finally:
        server.stop()


def test_the_page_runs_on_webgpu_where_the_browser_offers_a_device(launch, sites):
    folder, export = sites["tiny"]
    image = _inputs(32)[1]
    rgba = np.concatenate([image, np.full((32, 32, 1), 255, np.uint8)], -1)
    server = StaticServer(folder)
    # Headless Chromium has no GPU adapter; with these flags it offers SwiftShader's (Vulkan on the CPU).
    gpu_browser = launch("--enable-unsafe-webgpu", "--enable-features=Vulkan")
    try:
        page, log = _open(gpu_browser, server.url)
        figures = {}
        for variant in ("float16", "int8"):
            page.select_option("#variant", variant)
            page.wait_for_function(NOT_LOADING, timeout=120_000)
            assert f"in this browser: {variant} on WebGPU" in page.text_content("#status")
            page.evaluate(PUT_CANVAS, [rgba.ravel().tolist(), 32])
            reference = load(export.tflite(variant), num_threads=1)(image)
            # The GPU delegate computes in floating point (int8 too), unlike XNNPack's int8 kernels.
            figures[variant] = psnr(_translate(page), reference)
            assert figures[variant] >= GATES[variant]
        print(f"\nWebGPU (SwiftShader): PSNR (dB) browser vs Python interpreter: {figures}")
        assert not log["foreign"] and not log["failed"], log
    finally:
        gpu_browser.close()
        server.stop()


def test_opened_as_a_file_the_page_says_to_serve_it(browser, sites):
    page = browser.new_page()
    page.goto(WebDir(sites["tiny"][0]).page.as_uri())  # module scripts do not load from file://
    assert "must be opened through a web server" in page.text_content("#error")
    page.close()


def _broken_copy(folder, tmp_path, name, keep_runtime=True):
    copy = tmp_path / name
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("litert"))
    if keep_runtime:
        (copy / "litert").symlink_to(folder / "litert")
    return copy


# The page's BrowserRunner over a stand-in LiteRT.js whose wasm heap holds `capacity` times the
# largest model: compiling takes a model's bytes from the heap, delete() gives them back, and a
# compile past the heap fails as LiteRT.js 2.5.3 did at 256 px (a trap, "memory access out of bounds").
SWITCH_UNDER_A_SMALL_HEAP = """async ([manifest, capacity, variants]) => {
  const { BrowserRunner } = await import('./run_browser.js');
  const config = await (await fetch(manifest)).json();
  const runner = new BrowserRunner(config, path => new URL(path, location.href).href);
  const largest = Math.max(...config.variants.map(v => v.bytes));
  let used = 0;
  const details = [{ dtype: 'float32', shape: [1, config.image_size, config.image_size, config.channels] }];
  runner.litert = {
    getGlobalLiteRt: () => ({ liteRtWasm: { getThreadCount: () => 1 } }),
    loadAndCompile: async bytes => {
      if (used + bytes.length > capacity * largest) throw new WebAssembly.RuntimeError('memory access out of bounds');
      used += bytes.length;
      return { options: { accelerator: 'wasm' }, signatures: { serving_default: { getInputDetails: () => details } },
               delete() { used -= bytes.length; } };
    },
  };
  runner.accelerator = 'wasm';
  const lines = [];
  for (const variant of variants) {
    try { lines.push(await runner.load(variant)); } catch (error) { lines.push(`error: ${error.message}`); }
  }
  return lines;
}"""


def test_switching_variants_frees_the_old_model_first_and_a_full_heap_says_out_of_memory(browser, sites):
    folder, export = sites["shipped"]
    manifest = WebDir(folder).manifest.name
    server = StaticServer(folder)
    try:
        page, _ = _open(browser, server.url)
        both = [export.variants[0], export.variants[-1], export.variants[0]]
        assert len(set(both)) == 2
        # Room for one model and a half: each switch fits only if the old model went first.
        lines = page.evaluate(SWITCH_UNDER_A_SMALL_HEAP, [manifest, 1.5, both])
        assert all(line.startswith("in this browser: ") for line in lines), lines
        # Room for less than one: an allocation failure is out of memory, not a damaged file.
        (line,) = page.evaluate(SWITCH_UNDER_A_SMALL_HEAP, [manifest, 0.5, both[1:2]])
        file = f"models/generator_{both[1]}.tflite"
        assert line.startswith(f"error: this browser ran out of memory compiling {file}"), line
        assert "Reload the page" in line and "damaged" not in line
        page.context.close()
    finally:
        server.stop()


def test_a_damaged_or_missing_model_or_runtime_is_a_message_on_the_page(browser, served_site, tmp_path):
    folder, export, _ = served_site
    copy = _broken_copy(folder, tmp_path, "broken")
    first, second = export.variants[:2]
    default = "float16" if "float16" in export.variants else first
    damaged, missing = default, next(v for v in (first, second) if v != default)
    WebDir(copy).model(damaged).write_bytes(b"this is not a TFLite model\n" * 100)
    WebDir(copy).model(missing).unlink()
    server = StaticServer(copy)
    try:
        page, _ = _open(browser, server.url)
        assert page.get_attribute("#status", "data-state") == "error"
        message = page.text_content("#error")
        assert f"models/generator_{damaged}.tflite" in message and "not a model LiteRT.js can run" in message
        page.click("#translate")  # and again when asked to translate, not a blank
        page.wait_for_function("() => document.getElementById('error').textContent.length > 0")
        assert "not a model LiteRT.js can run" in page.text_content("#error")
        page.select_option("#variant", missing)
        page.wait_for_function(NOT_LOADING, timeout=60_000)
        assert f"models/generator_{missing}.tflite: HTTP 404" in page.text_content("#error")
        page.context.close()
    finally:
        server.stop()

    no_runtime = _broken_copy(folder, tmp_path, "no_runtime", keep_runtime=False)
    server = StaticServer(no_runtime)
    try:
        page, _ = _open(browser, server.url)
        assert "the LiteRT.js runtime did not load from litert/litert.js" in page.text_content("#error")
        page.context.close()
    finally:
        server.stop()


# --- serve: "in this browser" beside "on the server" --------------------------------------
def _request(app, method, url):
    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.request(method, url)

    # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


def _page_config(reply) -> dict:
    text = reply.text
    start = text.index('id="page-config">') + len('id="page-config">')
    return json.loads(text[start : text.index("</script>", start)])


def test_serve_offers_the_browser_only_with_tflite_files_and_the_cached_runtime(shipped_served, litert, tmp_path):
    from pix2pix_tf.serve import create_app

    app = create_app(shipped_served, browser_runtime=litert)
    page = _request(app, "GET", "/")
    config = _page_config(page)
    assert config["runners"] == ["server", "browser"]
    assert [v["variant"] for v in config["variants"]] == ["float16", "int8"]
    policy = page.headers["content-security-policy"]
    assert "script-src 'nonce-" in policy and "'self' 'wasm-unsafe-eval';" in policy and "'unsafe-eval'" not in policy
    assert "'unsafe-inline'" not in policy and "frame-ancestors 'none'" in policy
    assert page.headers["cross-origin-opener-policy"] == "same-origin"
    assert page.headers["cross-origin-embedder-policy"] == "require-corp"
    wasm = _request(app, "GET", "/web/litert/wasm/litert_wasm_threaded_internal.wasm")
    assert wasm.status_code == 200 and wasm.headers["content-type"] == "application/wasm"
    assert wasm.headers["cross-origin-embedder-policy"] == "require-corp"
    assert wasm.content == (RuntimeDir(litert).wasm / "litert_wasm_threaded_internal.wasm").read_bytes()
    model = _request(app, "GET", "/web/models/generator_int8.tflite")
    assert model.content == ExportDir(shipped_model()).tflite("int8").read_bytes()
    assert _request(app, "GET", "/web/page.js").headers["content-type"].startswith("text/javascript")
    assert _request(app, "GET", "/web/run_server.js").status_code == 200
    for path in ("/web/../app.py", "/web/%2e%2e/app.py", "/web/litert/.pix2pix_tf_runtime", "/web/models/x.tflite"):
        assert _request(app, "GET", path).status_code == 404, path
    assert _request(app, "POST", "/web/page.js").status_code == 405

    without = create_app(shipped_served)  # no runtime: the server's page as before
    page = _request(without, "GET", "/")
    config = _page_config(page)
    assert (
        config["runners"] == ["server"]
        and "LiteRT.js runtime is not in this machine's cache" in config["browser_unavailable"]
    )
    assert "wasm" not in page.headers["content-security-policy"] and "cross-origin-opener-policy" not in page.headers
    assert _request(without, "GET", "/web/litert/litert.js").status_code == 404
    assert _request(without, "GET", "/web/tools.js").status_code == 200


def test_the_serve_page_runs_the_model_in_the_browser_too(browser, litert):
    server = LiveServer()  # the shipped model; the runtime from the cache this process sees
    try:
        page, log = _open(browser, server.url)
        assert page.is_enabled('input[value="browser"]')
        on_server = _translate(page)
        page.check('input[value="browser"]')
        page.wait_for_function(NOT_LOADING, timeout=120_000)
        assert page.text_content("#error") == ""
        in_browser = _translate(page)
        # float16 on LiteRT.js against the SavedModel on the server: the export's float16 gate.
        assert psnr(in_browser, on_server) >= 40
        # serve sends COOP/COEP: cross-origin isolated, the threaded build.
        assert page.evaluate("() => self.crossOriginIsolated") is True
        assert any(u.endswith("/web/litert/wasm/litert_wasm_threaded_internal.wasm") for u in log["requests"])
        # The page's load of the threaded loader and its workers' loads: they pass the origin guard too.
        assert sum(u.endswith("/web/litert/wasm/litert_wasm_threaded_internal.js") for u in log["requests"]) > 1
        assert "thread" in page.text_content("#status") and "no COOP/COEP" not in page.text_content("#status")
        _choose(page, "int8")
        assert psnr(_translate(page), on_server) >= 28
        assert all(u.startswith(server.url + "/") for u in log["requests"])
        assert not log["foreign"] and not log["failed"] and not log["errors"], log
        page.context.close()
    finally:
        server.stop()


def test_translate_in_browser_gives_the_pages_output_for_an_image(sites, litert, tmp_path):
    from pix2pix_tf.webapp.headless import browser_available, translate_in_browser

    if browser_available():
        pytest.skip(browser_available())
    folder, export = sites["shipped"]
    size = json.loads(WebDir(folder).manifest.read_text())["image_size"]
    image = _inputs(size)[1]  # a label map
    variant = export.variants[-1]
    result = translate_in_browser(folder, image, variant=variant)
    assert f"in this browser: {variant} on wasm" in result.status
    assert psnr(result.image, load(export.tflite(variant), num_threads=1)(image)) >= GATES[variant]

    async def in_a_running_loop():  # as in a Jupyter kernel, where Playwright's sync API alone refuses
        return translate_in_browser(folder, image, variant=variant)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert np.array_equal(pool.submit(asyncio.run, in_a_running_loop()).result().image, result.image)
    broken = _broken_copy(folder, tmp_path, "broken")
    WebDir(broken).model(variant).write_bytes(b"not a model")
    with pytest.raises(Pix2PixError, match="the web app says: .*not a model LiteRT.js can run"):
        translate_in_browser(broken, image, variant=variant)
