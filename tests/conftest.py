import fcntl
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from pix2pix_tf.webapp.headless import chromium  # noqa: E402


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: without it (-p no:xdist) there is nothing to define
def pytest_xdist_auto_num_workers(config):
    """What `-n auto` (pyproject's addopts) means: one pytest-xdist worker per CPU this process may use.

    xdist's own `auto` counts physical cores when psutil is installed, and a 2-vCPU machine can
    report one. Most of the suite's time is one process waiting on another (a browser, pip, a
    training job's workers, a notebook kernel), so a worker per CPU keeps them busy. xdist's
    PYTEST_XDIST_AUTO_NUM_WORKERS still sets the number; `-n 0` runs in one process.
    """
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return int(os.environ["PYTEST_XDIST_AUTO_NUM_WORKERS"])
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


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


# One tiny trained model and one export of it for the whole run, every xdist worker included
# (built_once): the modules that translate with, export or serve a trained model share them
# instead of each training its own (training and exporting it took 77 s on 2 idle cores, 227 s on busy ones).
# Ten times the paper's learning rate: in 60 steps the outputs get structure (a test
# facade's output has a standard deviation of ~30 levels, not ~2 as after 20 steps at
# 2e-4), so comparing artefacts' outputs can fail.
TINY_STEPS = 60


@pytest.fixture(scope="session")
def tiny_config():
    """32 px, ngf = ndf = 8, labels -> photo (BtoA), batch 2, 60 steps at lr 2e-3."""
    from pix2pix_tf.config import Config, DataConfig, ModelConfig, TrainConfig

    return Config(
        data=DataConfig(image_size=32, batch_size=2, direction="BtoA"),
        model=ModelConfig(ngf=8, ndf=8),
        train=TrainConfig(steps=TINY_STEPS, learning_rate=2e-3, sample_every=100, log_every=100),
    )


def built_once(tmp_path_factory, name: str, build) -> Path:
    """The folder `name` of this test run, built by `build(path)` in the first process that asks.

    With pytest-xdist each local worker has a temporary folder of its own, popen-gwN, in the
    run's folder, which they share: one worker trains or exports and the others wait for it
    and read the result instead of repeating it. A build that raised is tried again by the
    next. Anywhere else (one process, a remote worker) the folder is the process's own.
    """
    root = tmp_path_factory.getbasetemp()
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and root.name == f"popen-{worker}":  # not a process that merely inherited the variable
        root = root.parent
    path, key = root / name, name.replace("/", "_")
    done = root / f"{key}.done"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            shutil.rmtree(path, ignore_errors=True)  # what a build that raised left
            build(path)
            done.touch()
    return path


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """Synthetic facades, 32 px, 20 pairs: 16 train, 2 val, 2 test (test/1.jpg, test/2.jpg). Read-only."""
    from pix2pix_tf.data.synthetic import synthesize

    return built_once(tmp_path_factory, "tiny/data", lambda path: synthesize("facades", path, count=20, size=32))


@pytest.fixture(scope="session")
def trained_workdir(tiny_config, tiny_data, tmp_path_factory):
    """tiny_config trained on tiny_data: a work dir at step 60, beside tiny_data. Read-only: copy it to change it."""
    from pix2pix_tf.train import train

    return built_once(tmp_path_factory, "tiny/work", lambda path: train(tiny_config, tiny_data, path))


@pytest.fixture(scope="session")
def tiny_export(trained_workdir, tmp_path_factory):
    """The export folder of trained_workdir: SavedModel and the four TFLite variants. Read-only."""
    from pix2pix_tf.export import export

    return built_once(tmp_path_factory, "tiny/exp", lambda path: export(trained_workdir, path, stochastic=True))


@pytest.fixture(scope="session")
def tiny_export_report(tiny_export):
    """The report of exporting trained_workdir (every TFLite variant, stochastic signature), as written."""
    from pix2pix_tf.artifacts.exportdir import ExportDir
    from pix2pix_tf.artifacts.files import read_json

    return read_json(ExportDir(tiny_export).report, "the export's report")


@pytest.fixture(scope="session")
def facades(tmp_path_factory):
    """Synthetic facades, 32 px, 12 pairs: 10 train, 1 val, 1 test. For tests that train themselves."""
    from pix2pix_tf.data.synthetic import synthesize

    out = tmp_path_factory.mktemp("facades32")
    synthesize("facades", out, count=12, size=32, seed=0)
    return out


@pytest.fixture(scope="session")
def shipped_served():
    """The shipped demo model loaded for serving, as `pix2pix-tf serve` with no model does. Read-only."""
    from pix2pix_tf.serve import load_served_model

    return load_served_model(None)


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


CHROMIUM = chromium()  # the binary the library drives too (webapp.headless)


@pytest.fixture(scope="module")
def launch():
    """Starts Debian's Chromium through Playwright with extra command-line flags (per test module)."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing in CI: .ci/run must `apt-get install -y chromium`")
        pytest.skip("no Chromium: install it with `apt-get install -y chromium` to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield lambda *flags: playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", *flags])


@pytest.fixture(scope="module")
def browser(launch):
    """Debian's Chromium, headless, for the module's tests."""
    browser = launch()
    yield browser
    browser.close()
