"""The static web app and the LiteRT.js runtime folder in it: the only module that knows their file names.

<web>/index.html, web.json, *.js    the page, its manifest and its modules (see `WebDir`)
<web>/models/, examples/            the export's .tflite variants and the drawing tools' examples
<web>/litert/                       the runtime (a `RuntimeDir`), laid out as follows

<runtime>/litert.js                  LiteRT.js (@litertjs/core's dist/index.js, an ES module)
<runtime>/wasm-utils.js              its one import, @litertjs/wasm-utils (dist/index.js)
<runtime>/wasm/<build>.js, .wasm     the WebAssembly builds; LiteRT.js picks one by feature detection
<runtime>/LICENSE                    the Apache-2.0 text, headed by the packages, version and integrity
<runtime>/.pix2pix_tf_runtime        in the per-user cache only, written last: JSON of the verified packages

<cache>/litertjs-<version>/          the per-user cache's runtime folder (`runtime_cache_dir`)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pix2pix_tf.artifacts.exportdir import ExportDir
from pix2pix_tf.artifacts.folder import Folder

RUNTIME_MODULE = "litert.js"
RUNTIME_WASM_UTILS = "wasm-utils.js"
RUNTIME_WASM_DIR = "wasm"
RUNTIME_LICENSE = "LICENSE"
RUNTIME_STAMP = ".pix2pix_tf_runtime"
RUNTIME_CACHE_PREFIX = "litertjs-"
# Relaxed SIMD (the default), its fallback without, and pthreads (needs cross-origin isolation).
# Not the JSPI build (9.6 MB more): only WebNN and partial WebGPU delegation need it.
WASM_BUILDS = ("litert_wasm_internal", "litert_wasm_compat_internal", "litert_wasm_threaded_internal")
RUNTIME_FILES = (
    RUNTIME_MODULE,
    RUNTIME_WASM_UTILS,
    *(f"{RUNTIME_WASM_DIR}/{build}.{ext}" for build in WASM_BUILDS for ext in ("js", "wasm")),
    RUNTIME_LICENSE,
)  # what a web app carries: everything but the cache's stamp


@dataclasses.dataclass(frozen=True)
class RuntimeDir(Folder):
    """Paths in a LiteRT.js runtime folder, the per-user cache's or a web app's (nothing is created until written)."""

    @property
    def module(self) -> Path:
        """litert.js, the module the page imports."""
        return self.root / RUNTIME_MODULE

    @property
    def wasm_utils(self) -> Path:
        """wasm-utils.js, which litert.js imports as "@litertjs/wasm-utils" (the page's import map says where)."""
        return self.root / RUNTIME_WASM_UTILS

    @property
    def wasm(self) -> Path:
        """The folder of the WebAssembly builds, the path the page passes to `loadLiteRt`."""
        return self.root / RUNTIME_WASM_DIR

    @property
    def wasm_files(self) -> tuple[Path, ...]:
        """Each build's loader (.js) and binary (.wasm), under the names LiteRT.js looks for."""
        return tuple(self.wasm / f"{build}.{ext}" for build in WASM_BUILDS for ext in ("js", "wasm"))

    @property
    def license(self) -> Path:
        return self.root / RUNTIME_LICENSE

    @property
    def stamp(self) -> Path:
        """Written last into the cache's folder: its presence means the folder is complete."""
        return self.root / RUNTIME_STAMP

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file of the runtime (RUNTIME_FILES), without the stamp."""
        return tuple(self.root / name for name in RUNTIME_FILES)


def runtime_cache_dir(cache: Path, version: str) -> RuntimeDir:
    """The runtime folder of LiteRT.js `version` in the per-user cache folder `cache`."""
    return RuntimeDir(cache / f"{RUNTIME_CACHE_PREFIX}{version}")


WEB_MARKER = ".pix2pix_tf_web"
PAGE_FILE = "index.html"
MANIFEST_FILE = "web.json"
MODELS_DIR = "models"
EXAMPLES_DIR = "examples"
RUNTIME_DIR = "litert"


@dataclasses.dataclass(frozen=True)
class WebDir(Folder):
    """The static web app of an export: a page that runs its TFLite variants in the browser.

    <web>/index.html                    the page
    <web>/web.json                      manifest: model name, size, channels, direction, page
                                        config, variants [{variant, file, bytes, signatures}], runtime
    <web>/<module>.js                   the page's JavaScript modules (`script(name)`)
    <web>/models/generator_<v>.tflite   TFLite variant v, as the export has it
    <web>/examples/*.png                example inputs for the drawing tools
    <web>/litert/                       the LiteRT.js runtime (a `RuntimeDir`)
    <web>/.pix2pix_tf_web               marker: JSON of the version and time it was written

    The page's JavaScript finds web.json beside itself, and the model and runtime paths in
    web.json. `WebDir(".")` gives the paths relative to the app, as URLs use them.
    """

    @property
    def page(self) -> Path:
        return self.root / PAGE_FILE

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST_FILE

    @property
    def marker(self) -> Path:
        return self.root / WEB_MARKER

    def script(self, name: str) -> Path:
        """A JavaScript module of the page, `name` as in pix2pix_tf/webapp/static."""
        return self.root / name

    def model(self, variant: str) -> Path:
        return self.root / MODELS_DIR / ExportDir.tflite_name(variant)

    @property
    def examples(self) -> Path:
        return self.root / EXAMPLES_DIR

    @property
    def runtime(self) -> RuntimeDir:
        return RuntimeDir(self.root / RUNTIME_DIR)
