"""The page of `pix2pix-tf serve` and of the static web app: its config, its files and its HTML.

One page (static/index.html) and one set of JavaScript modules serve both: tools.js (the
drawing, example and upload tools), image.js (an image file at the model's size, as the
Python Translator decodes and resizes it), page.js (the page), run_server.js ("on the
server": serve's REST API) and run_browser.js ("in this browser": LiteRT.js). The paths the page
uses are those of the web app's layout (`artifacts.webdir.WebDir`), below a base URL: "./"
in the static app, serve's own path in serve.
"""

from __future__ import annotations

import json
from pathlib import Path

from pix2pix_tf.artifacts.exportdir import ExportDir
from pix2pix_tf.artifacts.webdir import WebDir
from pix2pix_tf.data.synthetic import FACADE_CLASSES, FACADE_PALETTE
from pix2pix_tf.webapp import runtime

STATIC = Path(__file__).parent / "static"
PAGE_TOOLS = ("auto", "facade_labels", "pencil")
BROWSER_SCRIPTS = ("page.js", "tools.js", "image.js", "run_browser.js")  # what the static app needs
SERVER_SCRIPTS = ("run_server.js",)  # what serve's page adds
APP = WebDir(".")  # the app's paths relative to its root, as the page and web.json write them


def resolve_tools(tools: str, direction: str, channels: int) -> str:
    """The drawing tools for a model: "auto" is the facade palette for an RGB model trained
    B -> A (labels -> photo in the facades layout), else the pencil.

    Raises:
        ValueError: `tools` is not one of PAGE_TOOLS.
    """
    if tools not in PAGE_TOOLS:
        raise ValueError(f"page_tools must be one of {', '.join(PAGE_TOOLS)}; got {tools!r}")
    if tools == "auto":
        return "facade_labels" if direction == "BtoA" and channels == 3 else "pencil"
    return tools


def examples(tools: str) -> list[Path]:
    """The example inputs the page offers with these tools (facade label maps for the palette)."""
    return sorted((STATIC / "examples").glob("*.png")) if tools == "facade_labels" else []


def url_path(path: Path) -> str:
    """A path of `APP` as the page writes it (forward slashes)."""
    return path.as_posix()


def variants(export: ExportDir) -> list[dict]:
    """The export's .tflite variants as the page config lists them: {variant, file (a path of `APP`), bytes}."""
    return [
        {"variant": v, "file": url_path(APP.model(v)), "bytes": export.tflite(v).stat().st_size}
        for v in export.variants
    ]


def app_files(tools: str, export: ExportDir | None = None, server: bool = False) -> dict[str, Path]:
    """The files of the app that are copies: a path of `APP` -> the file it copies.

    Args:
        tools: the page's drawing tools (their examples are included).
        export: include its .tflite variants as the browser's models.
        server: include the scripts only serve's page uses.
    """
    scripts = BROWSER_SCRIPTS + (SERVER_SCRIPTS if server else ())
    files = {url_path(APP.script(name)): STATIC / name for name in scripts}
    files.update({url_path(APP.examples / path.name): path for path in examples(tools)})
    for variant in export.variants if export is not None else ():
        files[url_path(APP.model(variant))] = export.tflite(variant)
    return files


def page_config(
    *,
    name: str,
    image_size: int,
    channels: int,
    direction: str,
    tools: str,
    runners: tuple[str, ...],
    variants: list[dict],
    browser_unavailable: str | None = None,
) -> dict:
    """What the page needs to know: the model, the tools, the runners and the browser runner's files.

    Args:
        name: the model's name, shown on the page (and serve's REST name).
        image_size: the side the model takes.
        channels: its image channels.
        direction: its training direction ("AtoB" or "BtoA").
        tools: "facade_labels" or "pencil" (see `resolve_tools`).
        runners: where translations run, first the default: "server" and/or "browser".
        variants: TFLite variants for the browser: {variant, file (a path of `APP`), bytes, ...}.
        browser_unavailable: why the page cannot offer "in this browser", if so.
    """
    labels = tools == "facade_labels"
    palette = [
        {"name": label, "color": "#{:02x}{:02x}{:02x}".format(*rgb)}
        for label, rgb in zip(FACADE_CLASSES, FACADE_PALETTE.tolist())
    ]
    config = {
        "name": name,
        "image_size": image_size,
        "channels": channels,
        "direction": direction,
        "tools": tools,
        "palette": palette if labels else [],
        "examples": [url_path(APP.examples / path.name) for path in examples(tools)],
        "runners": list(runners),
        "variants": variants,
        "runtime": {
            "package": runtime.LITERT_JS,
            "version": runtime.VERSION,
            # The npm tarball's hash that `runtime.fetch` checked: a record for readers, not an SRI
            # attribute (the browser checks nothing; the files come from the app's own origin).
            "npm_integrity": runtime.PINNED[f"{runtime.LITERT_JS}@{runtime.VERSION}"],
            "module": url_path(APP.runtime.module),
            "wasm": url_path(APP.runtime.wasm) + "/",  # a folder: LiteRT.js picks the build in it
        },
    }
    if browser_unavailable:
        config["browser_unavailable"] = browser_unavailable
    return config


def render(base: str, config: dict | None = None) -> str:
    """The page's HTML.

    Args:
        base: the URL of the app's root, ending in "/" ("./" for the static app).
        config: written into the page (serve); None: the page reads the manifest (`WebDir.manifest`)
            beside its scripts.
    """
    # litert.js imports wasm-utils.js by its package name; the import map says where it is.
    imports = {"imports": {runtime.WASM_UTILS: base + url_path(APP.runtime.wasm_utils)}}
    embedded = "" if config is None else _script_json(config)
    html = (STATIC / "index.html").read_text()
    fills = {"base": base, "importmap": _script_json(imports), "manifest": url_path(APP.manifest), "config": embedded}
    for key, value in fills.items():
        html = html.replace("{{" + key + "}}", value)
    return html


def _script_json(value) -> str:
    # Inside <script>, "<" could close the element or open a comment: JSON may write it escaped.
    return json.dumps(value).replace("<", "\\u003c")
