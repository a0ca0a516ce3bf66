"""The static web app of an export: the page, its TFLite variants and the LiteRT.js runtime in one folder.

The folder works from any static file server (`python -m http.server`, GitHub Pages, a
phone on the LAN) and asks nothing of any other origin. Its layout is
`artifacts.webdir.WebDir`'s; it is written into a staging folder and swapped in whole.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pix2pix_tf import __version__
from pix2pix_tf.artifacts.exportdir import ExportDir
from pix2pix_tf.artifacts.files import load_config, staged_output, write_json
from pix2pix_tf.artifacts.model_path import open_model
from pix2pix_tf.artifacts.webdir import WEB_MARKER, WebDir
from pix2pix_tf.errors import Pix2PixError, short_message
from pix2pix_tf.shipped import shipped_model
from pix2pix_tf.webapp import page, runtime
from pix2pix_tf.webapp.runtime import RuntimeUnavailable

MADE_BY = "pix2pix-tf web"


def signature_keys(path: Path) -> list[str]:
    """The signature keys of a .tflite file.

    Raises:
        Pix2PixError: the file is no TFLite model.
    """
    from ai_edge_litert.interpreter import Interpreter

    try:
        return sorted(Interpreter(model_path=str(path)).get_signature_list())
    except (ValueError, RuntimeError) as e:  # "Model provided has model identifier ..., should be TFL3"
        raise Pix2PixError(f"{path}: not a TFLite model ({short_message(e)}); export it again") from None


def write_site(
    export_dir: str | Path, out: str | Path | None = None, *, name: str | None = None, tools: str = "auto"
) -> Path:
    """Writes the static web app of an export.

    `out` must be missing, empty or a web app written before (it holds WEB_MARKER). A
    failure leaves it as it was. Without the LiteRT.js runtime (no npm, no network and
    no cache), everything else is written and `RuntimeUnavailable` is raised after.

    Args:
        export_dir: an export dir with at least one .tflite variant.
        out: the web app's folder (default: EXPORT/web; required for the shipped model,
            whose folder is part of the installed package).
        name: the model's name on the page (default: the export folder's name).
        tools: the page's drawing tools (see `page.resolve_tools`).

    Returns:
        `out`.

    Raises:
        Pix2PixError: not an export, no .tflite variant, a damaged one, `out` refused or
            not writable (any OS error: one line naming the path and the reason).
        RuntimeUnavailable: the app was written without the runtime.
    """
    export = ExportDir(open_model(export_dir, accept=("export",), refusal="no web app to write").path)
    if out is None and _is_shipped(export.root):
        raise Pix2PixError(
            f"{export_dir}: is the shipped model's folder, part of the installed package: "
            "write its web app elsewhere with --out DIR"
        )
    out = Path(out) if out is not None else export.web.root
    if not export.variants:
        raise Pix2PixError(
            f"{export.root}: has no .tflite model for the browser; export it with --tflite (e.g. float16,int8)"
        )
    config = load_config(export.config)
    tools = page.resolve_tools(tools, config.data.direction, config.data.channels)
    manifest = page.page_config(
        name=name or Path(export.root).resolve().name,
        image_size=config.data.image_size,
        channels=config.data.channels,
        direction=config.data.direction,
        tools=tools,
        runners=("browser",),
        variants=[
            {**entry, "signatures": signature_keys(export.tflite(entry["variant"]))} for entry in page.variants(export)
        ],
    )
    manifest["written_by"] = f"pix2pix_tf {__version__}"
    missing = None
    try:
        with staged_output(
            out, "the web app", marker=WEB_MARKER, made_by=MADE_BY, stamp={"model": manifest["name"]}
        ) as tmp:
            web = WebDir(tmp)
            web.page.write_text(page.render("./"))
            write_json(web.manifest, manifest)
            for path, source in page.app_files(tools, export).items():
                (tmp / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, tmp / path)
            try:
                runtime.copy_to(web.runtime.root)
            except RuntimeUnavailable as e:
                missing = e
    except OSError as e:  # read-only, a file where a folder should be, a path /proc refuses, ...
        # The path that failed, unless it is `out` or its staging folder beside it (a name of no use).
        beside = e.filename and Path(os.path.abspath(e.filename)).parent == Path(os.path.abspath(out)).parent
        where = f": {e.filename}" if e.filename and not beside else ""
        # mkdir's "File exists" for a file where a folder of the path should be.
        reason = "not a folder" if isinstance(e, FileExistsError | NotADirectoryError) else short_message(e)
        raise Pix2PixError(
            f"{out}: could not write the web app ({reason}{where}); choose another folder with --out"
        ) from None
    if missing is not None:
        raise RuntimeUnavailable(f"{missing} (the rest of the web app is written; it lacks only the runtime)")
    return out


def _is_shipped(folder: Path) -> bool:
    try:
        return Path(folder).resolve() == shipped_model().resolve()
    except Pix2PixError:  # an install without the shipped model
        return False
