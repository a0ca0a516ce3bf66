"""What the page loads from the server's WEB_PATH: the web app's files, in its layout.

Always the page's scripts and the tools' examples. To offer "in this browser" as well,
the served model must be an export with .tflite variants (the shipped model is one) and
the LiteRT.js runtime must be in this machine's cache (`webapp.runtime.cached()`: serve
never fetches it); then the runtime and the variants are served too. Only the files
listed here are served, each with its MIME type.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pix2pix_tf.artifacts.exportdir import ExportDir
from pix2pix_tf.artifacts.webdir import RuntimeDir
from pix2pix_tf.webapp import page

WEB_PATH = "/web/"
MEDIA_TYPES = {
    ".js": "text/javascript",
    ".wasm": "application/wasm",  # else browsers refuse to compile it while it streams in
    ".tflite": "application/octet-stream",
    ".png": "image/png",
}
TEXT = "text/plain; charset=utf-8"  # the runtime's LICENSE


@dataclasses.dataclass(frozen=True)
class WebFiles:
    """The files under WEB_PATH and what the page config says of the browser runner.

    Attributes:
        files: a path below WEB_PATH -> the file it serves.
        variants: the .tflite variants the browser may load ({variant, file, bytes}).
        unavailable: why "in this browser" is not offered, or None if it is.
    """

    files: dict[str, Path]
    variants: list[dict]
    unavailable: str | None

    @property
    def in_browser(self) -> bool:
        return self.unavailable is None

    def media_type(self, path: str) -> str:
        return MEDIA_TYPES.get(Path(path).suffix, TEXT)


def web_files(tools: str, export: Path | None, runtime: Path | None) -> WebFiles:
    """The web files of a served model.

    Args:
        tools: the page's drawing tools.
        export: the export dir the model was loaded from, if it was.
        runtime: the cached LiteRT.js runtime folder (`webapp.runtime.cached()`), if there is one.
    """
    export_dir = ExportDir(export) if export is not None else None
    if export_dir is None or not export_dir.variants:
        unavailable = "the served model has no .tflite files (serve an export dir with TFLite variants)"
    elif runtime is None:
        unavailable = (
            "the LiteRT.js runtime is not in this machine's cache: fetch it once with "
            "`python -m pix2pix_tf.webapp.runtime` (or pix2pix-tf web) and restart the server"
        )
    else:
        unavailable = None
    if unavailable is not None:
        return WebFiles(page.app_files(tools, server=True), [], unavailable)
    files = page.app_files(tools, export_dir, server=True)
    app_runtime, cache = page.APP.runtime, RuntimeDir(runtime)
    files.update({page.url_path(path): source for path, source in zip(app_runtime.files, cache.files)})
    return WebFiles(files, page.variants(export_dir), None)
