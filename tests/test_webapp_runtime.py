"""Getting the LiteRT.js runtime: the real npm against the registry and npm's per-user cache, and a fake npm."""

import fnmatch
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from pathlib import Path

import pytest

from pix2pix_tf.artifacts.webdir import RUNTIME_FILES, RUNTIME_STAMP, RuntimeDir
from pix2pix_tf.webapp import runtime

pytestmark = pytest.mark.xdist_group("webapp_runtime")  # one worker builds the module's shared fixtures

REPO = Path(__file__).resolve().parents[1]
NPM = shutil.which("npm")
CORE = f"{runtime.LITERT_JS}@{runtime.VERSION}"
UTILS = f"{runtime.WASM_UTILS}@{runtime.VERSION}"
# The files' sizes in the pinned tarballs (as `tar tvzf` lists them): the right bytes, not only the right names.
SIZES = {
    "litert.js": 53_482,
    "wasm-utils.js": 1_494,
    "wasm/litert_wasm_internal.js": 273_035,
    "wasm/litert_wasm_internal.wasm": 9_367_934,
    "wasm/litert_wasm_compat_internal.js": 273_246,
    "wasm/litert_wasm_compat_internal.wasm": 9_334_181,
    "wasm/litert_wasm_threaded_internal.js": 317_475,
    "wasm/litert_wasm_threaded_internal.wasm": 9_445_834,
}
# A registry nobody answers: npm fails at once (no retries) unless its cache serves the request.
OFFLINE = {"npm_config_https_proxy": "http://127.0.0.1:9", "npm_config_proxy": "http://127.0.0.1:9"}
OFFLINE_FAST = {**OFFLINE, "npm_config_fetch_retries": "0"}


def _require_npm():
    if NPM is None:
        if os.environ.get("CI"):
            pytest.fail("npm is missing in CI: .ci/run must `apt-get install -y npm`")
        pytest.skip("no npm: install it with `apt-get install npm` to test fetching the LiteRT.js runtime")


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _left_in(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def _run_module(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pix2pix_tf.webapp.runtime"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def fetched(tmp_path_factory) -> Path:
    """The real fetch: npm with the user's own npm cache, into an empty PIX2PIX_TF_CACHE."""
    _require_npm()
    cache = tmp_path_factory.mktemp("pix2pix_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIX2PIX_TF_CACHE", str(cache))
        started = time.monotonic()
        folder = runtime.fetch()
        print(f"fetched in {time.monotonic() - started:.1f} s")
    return folder


def test_fetch_writes_the_pinned_runtime(fetched, monkeypatch, tmp_path):
    monkeypatch.setenv("PIX2PIX_TF_CACHE", str(fetched.parent))
    assert runtime.cached() == fetched == fetched.parent / f"litertjs-{runtime.VERSION}"
    assert _files(fetched) == {*RUNTIME_FILES, RUNTIME_STAMP}  # no JSPI build, no maps, no package.json
    folder = RuntimeDir(fetched)
    assert {name: (fetched / name).stat().st_size for name in SIZES} == SIZES
    module = folder.module.read_text()
    # An ES module exporting loadLiteRt, importing its dependency by the bare name the page's import map resolves.
    assert "loadLiteRt" in module and "export {" in module and 'from "@litertjs/wasm-utils"' in module
    assert "export {" in folder.wasm_utils.read_text() and "createWasmLib" in folder.wasm_utils.read_text()
    wasm = [path for path in folder.wasm_files if path.suffix == ".wasm"]
    assert len(wasm) == 3 and all(path.read_bytes()[:4] == b"\0asm" for path in wasm)
    # The modes any new file gets here, not the tarball's 0640 (a web server's user must read them).
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    assert {(fetched / name).stat().st_mode & 0o777 for name in RUNTIME_FILES} == {probe.stat().st_mode & 0o777}
    header, text = folder.license.read_text().split("\n\n", 1)
    assert all(f"{spec}  {integrity}" in header for spec, integrity in runtime.PINNED.items())
    assert "Apache License, Version 2.0" in header and "Version 2.0, January 2004" in text
    assert json.loads(folder.stamp.read_text())["packages"] == runtime.PINNED


def test_a_second_fetch_needs_no_npm(fetched, monkeypatch, tmp_path):
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("PIX2PIX_TF_CACHE", str(fetched.parent))
    assert runtime.fetch() == fetched
    result = _run_module({"PATH": str(tmp_path / "bin"), "PIX2PIX_TF_CACHE": str(fetched.parent)})
    assert result.returncode == 0 and result.stdout == f"{fetched}\n", result.stderr


def test_copy_to_copies_the_runtime_without_the_stamp(fetched, monkeypatch, tmp_path):
    monkeypatch.setenv("PIX2PIX_TF_CACHE", str(fetched.parent))
    runtime.copy_to(tmp_path / "web" / "litert")
    copied = tmp_path / "web" / "litert"
    assert _files(copied) == set(RUNTIME_FILES)
    assert all((copied / name).read_bytes() == (fetched / name).read_bytes() for name in RUNTIME_FILES)


def test_npms_cache_serves_a_second_export_without_network(fetched, monkeypatch, tmp_path):
    # Our cache is empty and the registry unreachable: npm's own per-user cache (warm since the
    # fixture's fetch) must serve both tarballs.
    monkeypatch.setenv("PIX2PIX_TF_CACHE", str(tmp_path / "cache"))
    for name, value in OFFLINE_FAST.items():
        monkeypatch.setenv(name, value)
    folder = runtime.fetch()
    assert folder == tmp_path / "cache" / fetched.name
    assert all((folder / name).read_bytes() == (fetched / name).read_bytes() for name in RUNTIME_FILES)


def test_no_network_and_nothing_in_npms_cache_is_one_line(monkeypatch, tmp_path):
    _require_npm()
    monkeypatch.setenv("PIX2PIX_TF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "empty_npm_cache"))
    for name, value in OFFLINE_FAST.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(runtime.RuntimeUnavailable) as raised:
        runtime.fetch()
    message = str(raised.value)
    assert "\n" not in message and f"npm pack {CORE} failed (ECONNREFUSED" in message and "rerun" in message
    assert _left_in(tmp_path / "cache") == []


def test_no_npm_and_an_empty_cache_is_one_line(monkeypatch, tmp_path):
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("PIX2PIX_TF_CACHE", str(tmp_path / "cache"))
    with pytest.raises(runtime.RuntimeUnavailable, match=r"npm is not on PATH.*apt-get install npm.*nodejs\.org"):
        runtime.fetch()
    result = _run_module({"PATH": str(tmp_path / "bin"), "PIX2PIX_TF_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and "npm" in result.stderr
    assert _left_in(tmp_path / "cache") == []


# --- a fake npm: whatever tarballs a test gives it, packed as `npm pack` does -----------------------------


def _tarball(files: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o640
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


def _package_files() -> dict[str, dict[str, bytes]]:
    """Stand-ins for the pinned packages' files, each with its own content."""
    core = {"package/package.json": b"{}", "package/dist/index.js": b"export function loadLiteRt() {}\n"}
    for path in RuntimeDir(Path(".")).wasm_files:
        core[f"package/wasm/{path.name}"] = b"\0asm" + path.name.encode()
    return {CORE: core, UTILS: {"package/dist/index.js": b"export function createWasmLib() {}\n"}}


FAKE_NPM = """#!{python}
import json, os, shutil, sys
spec, out = sys.argv[2], sys.argv[sys.argv.index("--pack-destination") + 1]
name = spec.lstrip("@").replace("/", "-").replace("@", "-") + ".tgz"
shutil.copyfile(os.path.join({store!r}, spec.replace("/", "+") + ".tgz"), os.path.join(out, name))
print(json.dumps([{{"filename": name}}]))
"""


@pytest.fixture
def fake_npm(monkeypatch, tmp_path):
    """Puts an `npm` on PATH that packs the given tarballs; PINNED pins them unless `pin` is False."""
    bin_dir, store = tmp_path / "bin", tmp_path / "store"
    bin_dir.mkdir()
    store.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("PIX2PIX_TF_CACHE", str(tmp_path / "cache"))

    def install(tarballs: dict[str, bytes], pin: bool = True, script: str | None = None) -> Path:
        for spec, data in tarballs.items():
            (store / (spec.replace("/", "+") + ".tgz")).write_bytes(data)
        npm = bin_dir / "npm"
        npm.write_text(script or FAKE_NPM.format(python=sys.executable, store=str(store)))
        npm.chmod(0o755)
        if pin:
            monkeypatch.setattr(runtime, "PINNED", {spec: runtime.sri_sha512(data) for spec, data in tarballs.items()})
        return tmp_path / "cache"

    return install


def test_the_fake_npm_stands_in_for_npm(fake_npm):
    # The checks below rely on it: with tarballs that match what is pinned, a fetch succeeds.
    files = _package_files()
    cache = fake_npm({spec: _tarball(members) for spec, members in files.items()})
    folder = RuntimeDir(runtime.fetch())
    assert folder.root.parent == cache and runtime.cached() == folder.root
    assert folder.module.read_bytes() == files[CORE]["package/dist/index.js"]
    assert folder.wasm_utils.read_bytes() == files[UTILS]["package/dist/index.js"]


def test_a_tarball_that_is_not_the_pinned_one_is_refused(fake_npm):
    tampered = {spec: _tarball(members) for spec, members in _package_files().items()}
    cache = fake_npm(tampered, pin=False)
    with pytest.raises(runtime.RuntimeUnavailable) as raised:
        runtime.fetch()
    message = str(raised.value)
    assert message.startswith(f"{CORE} from npm does not match its pinned integrity") and "\n" not in message
    assert f"expected {runtime.PINNED[CORE]}, found {runtime.sri_sha512(tampered[CORE])}" in message
    assert _left_in(cache) == []


def test_a_folder_without_its_stamp_or_a_file_is_not_complete(fake_npm):
    files = _package_files()
    cache = fake_npm({spec: _tarball(members) for spec, members in files.items()})
    written = RuntimeDir(runtime.fetch())
    stamp, wasm = written.stamp.read_bytes(), written.wasm_files[1]

    written.stamp.unlink()  # as a writer killed before its stamp would leave it
    assert runtime.cached() is None
    for damaged in ('{"packages": ', "[1, 2]"):  # cut short, not an object
        written.stamp.write_text(damaged)
        assert runtime.cached() is None
    written.stamp.write_bytes(stamp)
    wasm.unlink()
    assert runtime.cached() is None
    wasm.write_bytes(b"half")
    written.stamp.write_text(json.dumps({"packages": {CORE: "sha512-other"}}))  # another pin's
    assert runtime.cached() is None

    assert runtime.fetch() == written.root and runtime.cached() == written.root  # replaced, whole
    assert wasm.read_bytes() == files[CORE][f"package/wasm/{wasm.name}"]
    assert _left_in(cache) == [written.root.name]  # no staging or moved-aside folder left


def test_tarball_members_outside_the_package_are_not_written(fake_npm, tmp_path):
    files = _package_files()
    escapes = ["package/../../escaped.js", "../escaped.js", str(tmp_path / "absolute.js"), "package/wasm/../../x.js"]
    core = _tarball(files[CORE] | {name: b"alert(1)" for name in escapes}, symlinks={"package/link": "/etc"})
    cache = fake_npm({CORE: core, UTILS: _tarball(files[UTILS])})
    folder = runtime.fetch()
    assert _files(folder) == {*RUNTIME_FILES, RUNTIME_STAMP}
    assert not any(path.read_bytes() == b"alert(1)" for path in tmp_path.rglob("*.js") if path.is_file())
    assert _left_in(cache) == [folder.name]


def test_a_link_where_a_runtime_file_belongs_is_refused(fake_npm):
    files = _package_files()
    del files[CORE]["package/dist/index.js"]
    core = _tarball(files[CORE], symlinks={"package/dist/index.js": "/etc/passwd"})
    cache = fake_npm({CORE: core, UTILS: _tarball(files[UTILS])})
    with pytest.raises(runtime.RuntimeUnavailable, match="package/dist/index.js in its tarball is not a regular file"):
        runtime.fetch()
    assert _left_in(cache) == []


def test_npms_error_is_reported_in_one_line(fake_npm):
    failing = (
        "#!/bin/sh\n"
        "echo 'npm error code E404' >&2\n"
        "echo 'npm error 404 Not Found - GET https://registry.npmjs.org/@litertjs%2fcore' >&2\n"
        "echo 'npm error A complete log of this run can be found in: /tmp/x.log' >&2\n"
        "exit 1\n"
    )
    cache = fake_npm({}, pin=False, script=failing)
    with pytest.raises(runtime.RuntimeUnavailable) as raised:
        runtime.fetch()
    assert str(raised.value).startswith(
        f"npm pack {CORE} failed (npm error 404 Not Found - GET https://registry.npmjs.org/@litertjs%2fcore); rerun"
    )
    assert _left_in(cache) == []


def test_a_stalled_npm_is_ended_with_what_it_started(fake_npm, monkeypatch):
    # The child holds npm's output pipes: unless the whole process group ends, reading them waits 60 s.
    fake_npm({}, pin=False, script="#!/bin/sh\n/bin/sleep 60 &\nwait\n")
    monkeypatch.setattr(runtime, "NPM_TIMEOUT", 1)
    started = time.monotonic()
    with pytest.raises(runtime.RuntimeUnavailable, match=f"npm pack {CORE} did not finish within 1 s"):
        runtime.fetch()
    assert time.monotonic() - started < 15


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PIX2PIX_TF_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert runtime.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("PIX2PIX_TF_CACHE")
    assert runtime.cache_dir() == tmp_path / "xdg" / "pix2pix_tf"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # invalid by the XDG spec: ignored
    assert runtime.cache_dir() == tmp_path / "home" / ".cache" / "pix2pix_tf"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert runtime.cache_dir() == tmp_path / "home" / ".cache" / "pix2pix_tf"


def test_the_license_text_is_package_data():
    text = (REPO / "pix2pix_tf/webapp" / runtime.LICENSE_TEXT).read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["pix2pix_tf"]
    assert any(fnmatch.fnmatch(f"webapp/{runtime.LICENSE_TEXT}", pattern) for pattern in patterns)


def test_importing_the_runtime_loads_no_tensorflow():
    code = "import sys, pix2pix_tf.webapp.runtime; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout == "False\n", result.stderr
