"""Installs as people do them: a wheel and `pip install .` in a clean venv, used from elsewhere."""

import io
import os
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

import pix2pix_tf
from pix2pix_tf.errors import Pix2PixError
from pix2pix_tf.shipped import shipped_model

REPO = Path(__file__).resolve().parents[1]
SHIPPED_DIR = REPO / "saved_models"  # the repository's layout; installed as pix2pix_tf.saved_models
WHEEL_BUDGET = 25e6  # bytes: the code plus the shipped model (itself held to 25 MB by test_export)
PNG = {"content-type": "image/png"}  # /translate refuses untyped bodies (a cross-site form could send them)


def _shipped_files() -> set[str]:
    """Every file of the shipped models, as the wheel names it."""
    return {
        "pix2pix_tf/saved_models/" + p.relative_to(SHIPPED_DIR).as_posix()
        for p in SHIPPED_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_pyproject_lists_every_package():
    # pyproject.toml lists the packages (discovery cannot map saved_models/ onto
    # pix2pix_tf.saved_models): a new subpackage missing from the list would be left
    # out of wheels while the editable install hides it.
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in (REPO / "pix2pix_tf").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert set(setuptools["packages"]) == on_disk | {"pix2pix_tf.saved_models"}
    assert setuptools["package-dir"] == {"pix2pix_tf.saved_models": "saved_models"}


def test_shipped_model_is_found_without_tensorflow(tmp_path):
    code = "import sys, pix2pix_tf; print(pix2pix_tf.shipped_model()); print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    path, tensorflow_loaded = result.stdout.split()
    assert Path(path) == shipped_model() and tensorflow_loaded == "False"
    assert (shipped_model() / "saved_model/saved_model.pb").is_file()


def test_a_missing_shipped_model_is_one_clear_error(monkeypatch):
    monkeypatch.setattr("pix2pix_tf.shipped.SHIPPED_PACKAGE", "pix2pix_tf.no_such_package")
    with pytest.raises(Pix2PixError, match="shipped demo model is not in this install"):
        pix2pix_tf.shipped_model()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """The checkout as a fresh clone of it would be, with the work in progress: its files
    that git tracks or would (not runs/, build/, caches). Building there writes no
    build/ or egg-info into the checkout and reuses nothing an earlier build left."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    root = tmp_path_factory.mktemp("source") / "pix2pix_tf"
    for name in filter(None, listed.decode().split("\0")):
        if (REPO / name).is_file():  # not a deleted file git still lists
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    return root


@pytest.fixture
def env() -> dict[str, str]:
    """The environment without anything that would point Python at the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return env | {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def _run(argv, cwd, env, timeout=600) -> str:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{argv}: exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def _venv(path: Path, env) -> Path:
    # System site-packages provide TensorFlow and the other dependencies (nothing is
    # downloaded); the package itself must then come from the venv, which comes first
    # on sys.path: asserted after each install.
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(path)], cwd=path.parent, env=env)
    return path / "bin"


def _installed(bin_dir: Path, cwd: Path, env) -> tuple[Path, Path]:
    """Where the venv imports pix2pix_tf from, and the shipped model's folder it reports."""
    code = "import pix2pix_tf; print(pix2pix_tf.__file__); print(pix2pix_tf.shipped_model())"
    package, model = _run([str(bin_dir / "python"), "-c", code], cwd=cwd, env=env, timeout=120).split()
    return Path(package), Path(model)


def _translate_with_the_installed_server(bin_dir: Path, image: Path, cwd: Path, env) -> np.ndarray:
    """`pix2pix-tf serve` with no model: the reply of /translate for `image`."""
    from pix2pix_tf.serve import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (cwd / "serve.out").open("w"), (cwd / "serve.err").open("w")  # files: a full pipe would block the server
    server = subprocess.Popen(
        [str(bin_dir / "pix2pix-tf"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=log[0],
        stderr=log[1],
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, f"serve exited {server.returncode}: {(cwd / 'serve.err').read_text()[-3000:]}"
            try:
                if httpx.get(f"{url}/v1/models/pix2pix", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the installed server did not come up in 300 s"
            time.sleep(0.5)
        reply = httpx.post(f"{url}/translate", content=image.read_bytes(), headers=PNG, timeout=120)
        assert reply.status_code == 200 and reply.headers["content-type"] == "image/png", reply.text[:500]
        return np.asarray(Image.open(io.BytesIO(reply.content)))
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=60)
        for f in log:
            f.close()


@pytest.mark.slow
def test_a_wheel_in_a_clean_venv_serves_and_predicts_the_shipped_model_from_elsewhere(source, env, tmp_path):
    elsewhere = tmp_path / "elsewhere"  # outside the checkout: nothing is found through the working directory
    elsewhere.mkdir()
    assert not elsewhere.resolve().is_relative_to(REPO)

    # As `python -m build` does by default: an sdist, and the wheel built from it.
    _run([sys.executable, "-m", "build", "--outdir", str(tmp_path / "dist"), str(source)], cwd=elsewhere, env=env)
    (wheel,) = (tmp_path / "dist").glob("pix2pix_tf-*.whl")
    bin_dir = _venv(tmp_path / "venv", env)
    # --ignore-installed: the checkout's editable install is visible through the system site-packages.
    _run([str(bin_dir / "pip"), "install", "--no-deps", "--ignore-installed", str(wheel)], cwd=elsewhere, env=env)
    venv = (tmp_path / "venv").resolve()
    package = Path(
        _run([str(bin_dir / "python"), "-c", "import pix2pix_tf; print(pix2pix_tf.__file__)"], elsewhere, env)
    )
    assert package.resolve().is_relative_to(venv / "lib"), package

    image = package.parent / "webapp/static/examples/facade_1.png"  # a 64 px label map, installed as package data
    served = _translate_with_the_installed_server(bin_dir, image, elsewhere, env)
    assert served.shape == (64, 64, 3) and served.std() > 10  # a picture, not a flat fill
    served_from = Path((elsewhere / "serve.out").read_text().split()[1])  # "serving SOURCE as 'pix2pix': ..."
    assert served_from.resolve().is_relative_to(venv / "lib"), served_from

    _, model = _installed(bin_dir, elsewhere, env)
    assert model.resolve().is_relative_to(venv / "lib"), model
    predict = [str(bin_dir / "pix2pix-tf"), "predict", "--model", str(model), "--input", str(image)]
    _run([*predict, "--output", str(elsewhere / "out")], cwd=elsewhere, env=env)
    (written,) = (elsewhere / "out").glob("*.png")
    predicted = np.asarray(Image.open(written))
    assert np.abs(predicted.astype(int) - served).max() <= 1  # the same SavedModel behind both

    names = set(zipfile.ZipFile(wheel).namelist())
    assert _shipped_files() <= names, sorted(_shipped_files() - names)
    assert wheel.stat().st_size <= WHEEL_BUDGET, wheel.stat().st_size


@pytest.mark.slow
def test_pip_install_dot_puts_the_shipped_model_into_the_venv(source, env, tmp_path):
    # `pip install .` builds the wheel from the source tree itself (the test above builds
    # it from the sdist): the same model must land in the venv. Serving it is the test above.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bin_dir = _venv(tmp_path / "venv", env)
    _run([str(bin_dir / "pip"), "install", "--no-deps", "--ignore-installed", "."], cwd=source, env=env)
    venv = (tmp_path / "venv").resolve()
    package, model = _installed(bin_dir, elsewhere, env)
    assert package.resolve().is_relative_to(venv / "lib") and model.resolve().is_relative_to(venv / "lib")
    installed = {
        "pix2pix_tf/saved_models/" + p.relative_to(model.parent).as_posix() for p in model.rglob("*") if p.is_file()
    }
    assert installed == {name for name in _shipped_files() if name.startswith(f"pix2pix_tf/saved_models/{model.name}/")}
