"""The HTTP app: TensorFlow Serving's REST API, a plain upload endpoint and the drawing page.

Routes (NAME is the served model's name, version 1 the only version):

    GET  /v1/models/NAME[/versions/1]             model status (AVAILABLE)
    GET  /v1/models/NAME[/versions/1]/metadata    model spec and signature defs
    POST /v1/models/NAME[/versions/1]:predict     row (`instances`) or columnar (`inputs`) format
    POST /translate[?native_size=true]            image bytes or a multipart `file` -> PNG
    GET  /                                        the drawing page (talks to :predict only, or runs
                                                  the model in the browser)
    GET  /web/PATH                                the page's scripts and examples; the LiteRT.js runtime
                                                  and .tflite variants when it offers "in this browser"

Bad input is answered with `{"error": "..."}` and 400 / 404 / 405 / 408 / 413 / 415, never 500.
Every reply carries the security headers and only trusted `Host` names are answered
(browser.py); work for a client that has hung up is dropped (batching.client_gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import tensorflow as tf
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from pix2pix_tf.config import Connections
from pix2pix_tf.data.images import ACCEPTED, ImageError, decode
from pix2pix_tf.data.pipeline import to_uint8
from pix2pix_tf.errors import Pix2PixError, short_message
from pix2pix_tf.inference import as_image, pad_to_multiple
from pix2pix_tf.serve import browser
from pix2pix_tf.serve.batching import Batcher, ClientGone, check_client, client_gone
from pix2pix_tf.serve.model import ServedModel
from pix2pix_tf.serve.rest import (
    Limits,
    RequestError,
    check_image_bytes,
    json_value_cap,
    loads,
    parse_predict,
    render_predict,
    short_repr,
)
from pix2pix_tf.serve.web import WEB_PATH, WebFiles, web_files
from pix2pix_tf.signatures import NATIVE_SIGNATURE, STOCHASTIC_SIGNATURE
from pix2pix_tf.webapp import page as webpage

VERSION = "1"
MAX_ERROR_CHARS = 1000
_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")  # what a library's message may embed

log = logging.getLogger(__name__)


def check_name(name: str) -> str:
    """The model name of the REST paths: compared with requests, never used as a path."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"model name must be letters, digits, '_', '.' or '-'; got {name!r}")
    return name


_PATH = re.compile(r"(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?:(?P<metadata>/metadata)|:(?P<verb>\w+))?")


def _error(message: str, status: int, allow: str | None = None) -> JSONResponse:
    # Never a memory address, nor an echo of a whole request.
    message = _REPR.sub("<object>", message)
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 3] + "..."
    headers = {"Allow": allow} if allow else {}
    if status == 408:  # the rest of a slow body is not waited for
        headers["Connection"] = "close"
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def _watch(request: Request) -> None:
    """Lets the batcher ask, just before the model runs, whether this request's client is still there."""
    client_gone.set(request.is_disconnected)


def _gone(request: Request) -> Response:
    # An ordinary event (a closed tab, a client's timeout): one short line, at info level.
    log.info("%s %s: the client hung up; its work is dropped", request.method, request.url.path)
    return Response(status_code=499)  # nginx's "client closed request"; no one reads it


async def _read_body(request: Request, limits: Limits, timeout: float) -> bytes:
    """The body, refused with 413 as soon as it passes the cap (before it is all read), or 408 after `timeout` s."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limits.max_body_bytes:
        raise RequestError(f"request body of {length} bytes; the limit is {limits.max_body_bytes}", 413)
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limits.max_body_bytes:
                    raise RequestError(f"request body over the limit of {limits.max_body_bytes} bytes", 413)
                chunks.append(chunk)
    except TimeoutError:
        raise RequestError(f"the request body did not arrive within {timeout:g} s ({size} bytes came)", 408) from None
    except ClientDisconnect:
        raise ClientGone() from None
    body = b"".join(chunks)
    request._body = body  # Starlette's cache: lets request.form() parse what was read here
    return body


class NativeSlot:
    """One native-size image in the network at a time, with a bounded queue in front of it.

    A request waits here before it decodes anything, so the memory of the queue is
    its bodies; when `max_waiting` requests already wait, the next gets a 503.
    """

    def __init__(self, max_waiting: int):
        self.max_waiting, self.waiting = max_waiting, 0
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def __call__(self):
        if self._lock.locked() and self.waiting >= self.max_waiting:
            raise RequestError(
                f"the server is busy: {self.waiting} native-size requests are waiting already; try again later", 503
            )
        self.waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self.waiting -= 1
        try:
            await check_client()  # a client that hung up while waiting costs no decoding
            yield
        finally:
            self._lock.release()


class App:
    """The server's state: the model, one batcher per signature, the limits."""

    def __init__(self, served: ServedModel, name: str, limits: Limits, max_batch: int, batch_timeout_ms: float):
        self.served, self.name, self.limits = served, name, limits
        # serving_stochastic is never batched: its batch-norm statistics would mix clients' images;
        # nor is native size, one full-resolution image at a time.
        self.batchers = {
            sig_name: Batcher(
                signature,
                max_batch=1 if sig_name in (STOCHASTIC_SIGNATURE, NATIVE_SIGNATURE) else max_batch,
                timeout_ms=batch_timeout_ms,
            )
            for sig_name, signature in served.signatures.items()
        }
        self.native_slot = NativeSlot(limits.max_native_queue)

    # --- TF Serving REST API -------------------------------------------------------
    async def models(self, request: Request) -> Response:
        match = _PATH.fullmatch(request.path_params["rest"])
        if not match:
            return _error(f"unknown path {request.url.path}; see /v1/models/{self.name}", 404)
        if match["name"] != self.name:
            return _error(f"Servable not found for request: Latest({match['name']})", 404)
        if match["version"] not in (None, VERSION):
            return _error(f"Servable not found for request: Specific({match['name']}, {match['version']})", 404)
        if match["verb"] is not None:
            if match["verb"] != "predict":
                return _error(f":{match['verb']} is not served here; this server implements :predict only", 404)
            if request.method != "POST":
                return _error(f"{request.method} not allowed: :predict takes POST", 405, allow="POST")
            return await self.predict(request)
        if request.method not in ("GET", "HEAD"):
            return _error(f"{request.method} not allowed here; use GET (or POST to :predict)", 405, allow="GET, HEAD")
        if match["metadata"]:
            return JSONResponse(self.metadata())
        status = {"version": VERSION, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        return JSONResponse({"model_version_status": [status]})

    def metadata(self) -> dict:
        signature_def = {
            name: {
                "inputs": {k: spec.metadata(name, "inputs") for k, spec in signature.inputs.items()},
                "outputs": {k: spec.metadata(name, "outputs") for k, spec in signature.outputs.items()},
                "method_name": "tensorflow/serving/predict",
            }
            for name, signature in self.served.signatures.items()
        }
        return {
            "model_spec": {"name": self.name, "signature_name": "", "version": VERSION},
            "metadata": {"signature_def": {"signature_def": signature_def}},
        }

    async def predict(self, request: Request) -> Response:
        _watch(request)
        try:
            body = await _read_body(request, self.limits, self.body_timeout)
            # Parsing and checking (JSON, arrays, image headers and decodes) run off the
            # event loop, as the model does: a large request never stalls the others.
            name, tensors, layout = await asyncio.to_thread(self._parse_predict, body)
            if name == NATIVE_SIGNATURE:  # the one guard of every native-size path
                async with self.native_slot():
                    outputs = await self._run(name, tensors)
            else:
                outputs = await self._run(name, tensors)
            # In a thread as well: a reply of 64 float images is 16 MB of JSON.
            reply = await asyncio.to_thread(render_predict, outputs, layout)
        except RequestError as e:
            return _error(str(e), e.status)
        except ClientGone:
            return _gone(request)
        return Response(reply, media_type="application/json")

    def _parse_predict(self, body: bytes) -> tuple[str, dict[str, np.ndarray], str]:
        data = loads(body, json_value_cap(self.limits, self.served.image_size, self.served.channels))
        name = data.get("signature_name", "serving_default") if isinstance(data, dict) else "serving_default"
        if not isinstance(name, str) or name not in self.served.signatures:
            raise RequestError(
                f"Serving signature name: {short_repr(name)} not found in signature def; "
                f"available: {sorted(self.served.signatures)}"
            )
        tensors, layout = parse_predict(data, self.served.signatures[name], self.limits, self.served.multiple)
        return name, tensors, layout

    async def _run(self, signature: str, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if signature not in self.batchers:
            raise RequestError(
                f"this model has no {signature} signature (exported by an older version?); export it again"
            )
        try:
            return await self.batchers[signature](tensors)
        except ImageError as e:  # translate_bytes decodes by the package's rule: a body too broken to decode
            raise RequestError(str(e)) from None
        except tf.errors.InvalidArgumentError as e:
            raise RequestError(f"the model could not read the input: {short_message(e).splitlines()[0]}") from None

    # --- plain upload ---------------------------------------------------------------
    async def translate(self, request: Request) -> Response:
        """Image bytes (or a multipart form's `file`) in, the translation as PNG out."""
        _watch(request)
        try:
            content_type = request.headers.get("content-type", "")
            refused = browser.cross_site_form(content_type, request.headers)
            if refused:
                raise RequestError(refused, 415)
            body = await _read_body(request, self.limits, self.body_timeout)
            if content_type.lower().startswith("multipart/form-data"):
                try:
                    form = await request.form()
                except HTTPException as e:  # a missing boundary, junk parts, too many fields
                    raise RequestError(f"bad multipart upload: {e.detail}") from None
                upload = form.get("file")
                if upload is None or isinstance(upload, str):
                    raise RequestError('multipart upload without a "file" field')
                body = await upload.read()
            if not body:
                raise RequestError(f"empty request body; expected an image ({ACCEPTED})")
            native = request.query_params.get("native_size", "false").lower() in ("1", "true", "yes")
            png = await (self._native(body) if native else self._model_size(body))
        except RequestError as e:
            return _error(str(e), e.status)
        except ClientGone:
            return _gone(request)
        return Response(png, media_type="image/png")

    async def _model_size(self, data: bytes) -> bytes:
        await asyncio.to_thread(check_image_bytes, data, self.limits, "the uploaded image")
        outputs = await self._run("translate_bytes", {"image_bytes": np.array([data], dtype=object)})
        return bytes(outputs["output_bytes"][0])

    async def _native(self, data: bytes) -> bytes:
        height, width = await asyncio.to_thread(check_image_bytes, data, self.limits, "the uploaded image")
        m = self.served.multiple
        padded_pixels = (height + -height % m) * (width + -width % m)
        if padded_pixels > self.limits.max_pixels:  # what the network would run on, not what was sent
            raise RequestError(
                f"the uploaded image: {width}x{height} padded to multiples of {m} is {padded_pixels} pixels; "
                f"the limit is {self.limits.max_pixels}",
                413,
            )

        def prepare():
            # The same decoding rule and padding as inference.Translator.
            try:
                image = as_image(decode(data, "the uploaded image"), self.served.channels).numpy()
            except Pix2PixError as e:
                raise RequestError(str(e)) from None
            return pad_to_multiple(image, m)

        # Decoded only once the slot is ours: a waiting request holds its body, not ~350 MB of pixels.
        async with self.native_slot():
            padded = await asyncio.to_thread(prepare)
            outputs = await self._run(NATIVE_SIGNATURE, {"input_image": padded[None]})
            del padded
            return await asyncio.to_thread(
                lambda: tf.io.encode_png(to_uint8(outputs["output_image"][0, :height, :width])).numpy()
            )

    # --- the page -------------------------------------------------------------------
    async def page(self, request: Request) -> Response:
        # What the page needs to know is written into it, so that at run time it talks
        # to the server only through the public API (:predict) and WEB_PATH's files.
        html, nonce = browser.with_nonce(webpage.render(WEB_PATH, self.page_config()))
        headers = {"Content-Security-Policy": browser.page_policy(nonce, in_browser=self.web.in_browser)}
        if self.web.in_browser:
            headers.update(browser.ISOLATION_HEADERS)
        return HTMLResponse(html, headers=headers)

    def page_config(self) -> dict:
        """The model's name and size, the drawing tools that fit it, example inputs and where it can run."""
        return webpage.page_config(
            name=self.name,
            image_size=self.served.image_size,
            channels=self.served.channels,
            direction=self.served.direction,
            tools=self.page_tools,
            runners=("server", "browser") if self.web.in_browser else ("server",),
            variants=self.web.variants,
            browser_unavailable=self.web.unavailable,
        )

    async def web_file(self, request: Request) -> Response:
        """A file of the page's web app (WEB_PATH); only those `self.web` lists."""
        path = request.path_params["path"]
        source = self.web.files.get(path)
        if source is None:
            return _error(f"{request.method} {request.url.path}: not found", 404)
        # COEP on the threaded build's worker scripts too: a worker shares the page's memory
        # only if it is cross-origin isolated as well.
        headers = browser.ISOLATION_HEADERS if self.web.in_browser else None
        return FileResponse(source, media_type=self.web.media_type(path), headers=headers)


def create_app(
    served: ServedModel,
    name: str = "pix2pix",
    limits: Limits | None = None,
    max_batch: int = 1,
    batch_timeout_ms: float = 5.0,
    page_tools: str = "auto",
    connections: Connections | None = None,
    allowed_hosts: Iterable[str] = (),
    browser_runtime: Path | None = None,
) -> Starlette:
    """The ASGI app serving `served` under `/v1/models/{name}`.

    Args:
        served: from `serve.model.load_served_model`.
        name: the model name in the REST paths (compared, never used as a path on disk).
        limits: body, pixel and instance caps (default `Limits()`).
        max_batch: rows per model call when batching concurrent requests (1: off).
        batch_timeout_ms: how long a request waits for others to batch with.
        page_tools: the page's drawing tools: "facade_labels" (the CMP palette),
            "pencil" (pencil and eraser on white), or "auto": facade labels for an RGB
            model trained B -> A (labels -> photo in the facades layout), else pencil.
        connections: the app applies `body_timeout` (the rest is the server's: see
            `serve.connections`).
        allowed_hosts: names (or addresses) answered in the `Host` header besides
            127.0.0.1, localhost and [::1], any port; "*" answers any.
        browser_runtime: the LiteRT.js runtime folder (`webapp.runtime.cached()`): with it, and
            a model served from an export with .tflite variants, the page also offers to run
            the model in the visitor's browser.
    """
    check_name(name)
    page_tools = webpage.resolve_tools(page_tools, served.direction, served.channels)
    if not (0 <= batch_timeout_ms < 60_000):
        raise ValueError(f"batch_timeout_ms must be in [0, 60000); got {batch_timeout_ms}")
    app = App(served, name, limits or Limits(), max_batch, batch_timeout_ms)
    app.page_tools = page_tools
    app.web: WebFiles = web_files(page_tools, served.export, browser_runtime)
    app.body_timeout = (connections or Connections()).body_timeout
    routes = [
        Route("/", app.page, methods=["GET", "HEAD"]),
        Route("/translate", app.translate, methods=["POST"]),
        Route(WEB_PATH + "{path:path}", app.web_file, methods=["GET", "HEAD"]),
        Route("/v1/models/{rest:path}", app.models, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
    ]

    async def not_found(request: Request, exc) -> Response:
        return _error(f"{request.method} {request.url.path}: {getattr(exc, 'detail', 'not found')}", exc.status_code)

    async def internal(request: Request, exc: Exception) -> Response:
        return _error(f"internal error ({type(exc).__name__}); the server log has the details", 500)

    starlette = _Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found, Exception: internal})
    starlette.router.redirect_slashes = False  # its redirect's Location is built from the Host header
    starlette.state.app = app
    starlette.state.allowed_hosts = browser.allowed_names(allowed_hosts)
    return starlette


class _Starlette(Starlette):
    def build_middleware_stack(self):
        # Outermost, so that the 500 answer of Starlette's error middleware gets the headers too.
        return browser.BrowserSafety(super().build_middleware_stack(), self.state.allowed_hosts)
