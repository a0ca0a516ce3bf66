"""The HTTP app: TensorFlow Serving's REST API, a plain upload endpoint and the drawing page.

Routes (NAME is the served model's name, version 1 the only version):

    GET  /v1/models/NAME[/versions/1]             model status (AVAILABLE)
    GET  /v1/models/NAME[/versions/1]/metadata    model spec and signature defs
    POST /v1/models/NAME[/versions/1]:predict     row (`instances`) or columnar (`inputs`) format
    POST /translate[?native_size=true]            image bytes or a multipart `file` -> PNG
    GET  /                                        the drawing page (talks to :predict only)

Bad input is answered with `{"error": "..."}` and 400 / 404 / 405 / 413, never 500.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path

import numpy as np
import tensorflow as tf
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from pix2pix_tf.data.pipeline import to_uint8
from pix2pix_tf.data.synthetic import FACADE_CLASSES, FACADE_PALETTE
from pix2pix_tf.errors import Pix2PixError, short_message
from pix2pix_tf.inference import NATIVE_SIGNATURE, as_image_bytes, pad_to_multiple
from pix2pix_tf.serve.batching import Batcher
from pix2pix_tf.serve.model import ServedModel
from pix2pix_tf.serve.rest import Limits, RequestError, check_image_bytes, format_predict, parse_predict, short_repr

VERSION = "1"
PAGE_TOOLS = ("auto", "facade_labels", "pencil")


def check_name(name: str) -> str:
    """The model name of the REST paths: compared with requests, never used as a path."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"model name must be letters, digits, '_', '.' or '-'; got {name!r}")
    return name


STATIC = Path(__file__).parent / "static"
_PATH = re.compile(r"(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?:(?P<metadata>/metadata)|:(?P<verb>\w+))?")


class PredictResponse(JSONResponse):
    """A predict reply: JSON with NaN and +-Infinity written as the tokens TF Serving writes.

    Inputs far outside the model's [-1, 1] overflow it; TF Serving answers those with
    the non-standard tokens `NaN`, `Infinity`, `-Infinity` ("JSON conformance" in its
    REST API docs), which Python's and most JSON readers accept. Starlette's JSON
    refuses them, which turned such a request into a 500.
    """

    def render(self, content) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=True, separators=(",", ":")).encode()


def _error(message: str, status: int, allow: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"Allow": allow} if allow else None)


async def _read_body(request: Request, limits: Limits) -> bytes:
    """The body, refused with 413 as soon as it passes the cap (before it is all read)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limits.max_body_bytes:
        raise RequestError(f"request body of {length} bytes; the limit is {limits.max_body_bytes}", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise RequestError(f"request body over the limit of {limits.max_body_bytes} bytes", 413)
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Starlette's cache: lets request.form() parse what was read here
    return body


class App:
    """The server's state: the model, one batcher per signature, the limits."""

    def __init__(self, served: ServedModel, name: str, limits: Limits, max_batch: int, batch_timeout_ms: float):
        self.served, self.name, self.limits = served, name, limits
        # serving_stochastic is never batched: its batch-norm statistics would mix clients' images.
        self.batchers = {
            sig_name: Batcher(
                signature,
                max_batch=1 if sig_name == "serving_stochastic" else max_batch,
                timeout_ms=batch_timeout_ms,
            )
            for sig_name, signature in served.signatures.items()
        }
        self.native_slots = asyncio.Semaphore(1)

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
        try:
            body = await _read_body(request, self.limits)
            # Parsing and checking (JSON, arrays, image headers and decodes) run off the
            # event loop, as the model does: a large request never stalls the others.
            name, tensors, layout = await asyncio.to_thread(self._parse_predict, body)
            outputs = await self._run(name, tensors)
            reply = await asyncio.to_thread(format_predict, outputs, layout)
        except RequestError as e:
            return _error(str(e), e.status)
        return PredictResponse(reply)

    def _parse_predict(self, body: bytes) -> tuple[str, dict[str, np.ndarray], str]:
        if not body.strip():
            raise RequestError("empty request body; expected JSON with instances or inputs")
        try:
            data = json.loads(body)
        except RecursionError:
            raise RequestError("malformed JSON: nested too deeply") from None
        except ValueError as e:  # JSONDecodeError, bad UTF-8, an integer of thousands of digits
            raise RequestError(f"malformed JSON: {e}") from None
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
        except tf.errors.InvalidArgumentError as e:  # e.g. an image the graph's decoder refuses
            raise RequestError(f"the model could not read the input: {short_message(e).splitlines()[0]}") from None

    # --- plain upload ---------------------------------------------------------------
    async def translate(self, request: Request) -> Response:
        """Image bytes (or a multipart form's `file`) in, the translation as PNG out."""
        try:
            body = await _read_body(request, self.limits)
            if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
                try:
                    form = await request.form()
                except HTTPException as e:  # a missing boundary, junk parts, too many fields
                    raise RequestError(f"bad multipart upload: {e.detail}") from None
                upload = form.get("file")
                if upload is None or isinstance(upload, str):
                    raise RequestError('multipart upload without a "file" field')
                body = await upload.read()
            if not body:
                raise RequestError("empty request body; expected an image (JPEG, PNG, BMP or GIF)")
            native = request.query_params.get("native_size", "false").lower() in ("1", "true", "yes")
            png = await (self._native(body) if native else self._model_size(body))
        except RequestError as e:
            return _error(str(e), e.status)
        return Response(png, media_type="image/png")

    async def _model_size(self, data: bytes) -> bytes:
        await asyncio.to_thread(check_image_bytes, data, self.limits, "the uploaded image")
        outputs = await self._run("translate_bytes", {"image_bytes": np.array([data], dtype=object)})
        return bytes(outputs["output_bytes"][0])

    async def _native(self, data: bytes) -> bytes:
        def prepare():
            height, width = check_image_bytes(data, self.limits, "the uploaded image")
            m = self.served.multiple
            padded_pixels = (height + -height % m) * (width + -width % m)
            if padded_pixels > self.limits.max_pixels:  # what the network would run on, not what was sent
                raise RequestError(
                    f"the uploaded image: {width}x{height} padded to multiples of {m} is {padded_pixels} pixels; "
                    f"the limit is {self.limits.max_pixels}",
                    413,
                )
            # The same decoder and padding as inference.Translator (16-bit PNGs scaled, not clipped).
            try:
                image = as_image_bytes(data, self.served.channels)
            except Pix2PixError as e:  # a file PIL reads but TensorFlow's decoder does not
                raise RequestError(f"the uploaded image: {e}") from None
            return image, pad_to_multiple(image, m)

        image, padded = await asyncio.to_thread(prepare)
        async with self.native_slots:  # one full-resolution image in the network at a time
            outputs = await self._run(NATIVE_SIGNATURE, {"input_image": padded[None]})
        height, width = image.shape[:2]
        return await asyncio.to_thread(
            lambda: tf.io.encode_png(to_uint8(outputs["output_image"][0, :height, :width])).numpy()
        )

    # --- the page -------------------------------------------------------------------
    async def page(self, request: Request) -> Response:
        # What the page needs to know is written into it, so that at run time it talks
        # to the server only through the public API (:predict).
        config = json.dumps(self.page_config()).replace("</", "<\\/")
        html = (STATIC / "index.html").read_text().replace("/*PAGE_CONFIG*/null", config)
        return HTMLResponse(html)

    def page_config(self) -> dict:
        """The model's name and size, the drawing tools that fit it and example inputs."""
        labels = self.page_tools == "facade_labels"
        examples = [
            "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
            for path in sorted((STATIC / "examples").glob("*.png"))
        ]
        palette = [
            {"name": name, "color": "#{:02x}{:02x}{:02x}".format(*rgb)}
            for name, rgb in zip(FACADE_CLASSES, FACADE_PALETTE.tolist())
        ]
        return {
            "name": self.name,
            "image_size": self.served.image_size,
            "channels": self.served.channels,
            "tools": self.page_tools,
            "palette": palette if labels else [],
            "examples": examples if labels else [],
        }


def create_app(
    served: ServedModel,
    name: str = "pix2pix",
    limits: Limits | None = None,
    max_batch: int = 1,
    batch_timeout_ms: float = 5.0,
    page_tools: str = "auto",
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
    """
    check_name(name)
    if page_tools not in PAGE_TOOLS:
        raise ValueError(f"page_tools must be one of {', '.join(PAGE_TOOLS)}; got {page_tools!r}")
    if not (0 <= batch_timeout_ms < 60_000):
        raise ValueError(f"batch_timeout_ms must be in [0, 60000); got {batch_timeout_ms}")
    if page_tools == "auto":
        page_tools = "facade_labels" if served.direction == "BtoA" and served.channels == 3 else "pencil"
    app = App(served, name, limits or Limits(), max_batch, batch_timeout_ms)
    app.page_tools = page_tools
    routes = [
        Route("/", app.page, methods=["GET", "HEAD"]),
        Route("/translate", app.translate, methods=["POST"]),
        Route("/v1/models/{rest:path}", app.models, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
    ]

    async def not_found(request: Request, exc) -> Response:
        return _error(f"{request.method} {request.url.path}: {getattr(exc, 'detail', 'not found')}", exc.status_code)

    async def internal(request: Request, exc: Exception) -> Response:
        return _error(f"internal error ({type(exc).__name__}); the server log has the details", 500)

    starlette = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found, Exception: internal})
    starlette.state.app = app
    return starlette
