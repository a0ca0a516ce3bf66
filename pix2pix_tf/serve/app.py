"""The HTTP app: TensorFlow Serving's REST API, a plain upload endpoint and the drawing page.

Routes (NAME is the served model's name, version 1 the only version):

    GET  /v1/models/NAME[/versions/1]             model status (AVAILABLE)
    GET  /v1/models/NAME[/versions/1]/metadata    model spec and signature defs
    POST /v1/models/NAME[/versions/1]:predict     row (`instances`) or columnar (`inputs`) format
    POST /translate[?native_size=true]            image bytes or a multipart `file` -> PNG
    GET  /                                        the drawing page (talks to :predict only)
    GET  /page/config                             what the page needs to know about the model

Bad input is answered with `{"error": "..."}` and 400 / 404 / 405 / 413, never 500.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from pix2pix_tf.data.synthetic import FACADE_CLASSES, FACADE_PALETTE
from pix2pix_tf.errors import short_message
from pix2pix_tf.inference import NATIVE_SIGNATURE, as_image
from pix2pix_tf.serve.batching import Batcher
from pix2pix_tf.serve.model import ServedModel, model_card
from pix2pix_tf.serve.rest import Limits, RequestError, check_image_bytes, format_predict, parse_predict

VERSION = "1"
STATIC = Path(__file__).parent / "static"
_PATH = re.compile(r"(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?:(?P<metadata>/metadata)|:(?P<verb>\w+))?")


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


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
        self.batchers = {
            sig_name: Batcher(signature, max_batch=max_batch, timeout_ms=batch_timeout_ms)
            for sig_name, signature in served.signatures.items()
        }

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
                return _error(f"{request.method} not allowed: :predict takes POST", 405)
            return await self.predict(request)
        if request.method != "GET":
            return _error(f"{request.method} not allowed here; use GET (or POST to :predict)", 405)
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
            if not body.strip():
                raise RequestError("empty request body; expected JSON with instances or inputs")
            try:
                data = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise RequestError(f"malformed JSON: {e}") from None
            except RecursionError:
                raise RequestError("malformed JSON: nested too deeply") from None
            name = data.get("signature_name", "serving_default") if isinstance(data, dict) else "serving_default"
            if not isinstance(name, str) or name not in self.served.signatures:
                raise RequestError(
                    f"Serving signature name: {name!r} not found in signature def; "
                    f"available: {sorted(self.served.signatures)}"
                )
            tensors, layout = parse_predict(data, self.served.signatures[name], self.limits, self.served.multiple)
            outputs = await self._run(name, tensors)
        except RequestError as e:
            return _error(str(e), e.status)
        return JSONResponse(format_predict(outputs, layout))

    async def _run(self, signature: str, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return await self.batchers[signature](tensors)
        except tf.errors.InvalidArgumentError as e:  # e.g. an image the graph's decoder refuses
            raise RequestError(f"the model refused the input: {short_message(e)}") from None

    # --- plain upload ---------------------------------------------------------------
    async def translate(self, request: Request) -> Response:
        """Image bytes (or a multipart form's `file`) in, the translation as PNG out."""
        try:
            body = await _read_body(request, self.limits)
            if request.headers.get("content-type", "").startswith("multipart/form-data"):
                form = await request.form()
                upload = form.get("file")
                if upload is None or isinstance(upload, str):
                    raise RequestError('multipart upload without a "file" field')
                body = await upload.read()
            if not body:
                raise RequestError("empty request body; expected an image (JPEG, PNG, BMP or GIF)")
            check_image_bytes(body, self.limits, "the uploaded image")
            native = request.query_params.get("native_size", "false").lower() in ("1", "true", "yes")
            png = await (self._native(body) if native else self._model_size(body))
        except RequestError as e:
            return _error(str(e), e.status)
        return Response(png, media_type="image/png")

    async def _model_size(self, data: bytes) -> bytes:
        outputs = await self._run("translate_bytes", {"image_bytes": np.array([data], dtype=object)})
        return bytes(outputs["output_bytes"][0])

    async def _native(self, data: bytes) -> bytes:
        image = as_image(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), self.served.channels).numpy()
        height, width, m = image.shape[0], image.shape[1], self.served.multiple
        padded = np.pad(
            image.astype(np.float32) / 127.5 - 1.0,
            ((0, -height % m), (0, -width % m), (0, 0)),
            mode="edge",
        )
        outputs = await self._run(NATIVE_SIGNATURE, {"input_image": padded[None]})
        result = np.clip(np.round((outputs["output_image"][0, :height, :width] + 1) * 127.5), 0, 255)
        return tf.io.encode_png(result.astype(np.uint8)).numpy()

    # --- the page -------------------------------------------------------------------
    async def page(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def page_config(self, request: Request) -> Response:
        """The model's size and direction, the drawing tools that fit it and example inputs."""
        labels = self.served.direction == "BtoA" and self.served.channels == 3
        examples = [
            "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
            for path in sorted((STATIC / "examples").glob("*.png"))
        ]
        return JSONResponse(
            {
                "name": self.name,
                "image_size": self.served.image_size,
                "channels": self.served.channels,
                "tools": "facade_labels" if labels else "pencil",
                "palette": [
                    {"name": name, "color": "#{:02x}{:02x}{:02x}".format(*rgb)}
                    for name, rgb in zip(FACADE_CLASSES, FACADE_PALETTE.tolist())
                ]
                if labels
                else [],
                "examples": examples if labels else [],
                "model_card": model_card(self.served),
            }
        )


def create_app(
    served: ServedModel,
    name: str = "pix2pix",
    limits: Limits | None = None,
    max_batch: int = 1,
    batch_timeout_ms: float = 5.0,
) -> Starlette:
    """The ASGI app serving `served` under `/v1/models/{name}`.

    Args:
        served: from `serve.model.load_served_model`.
        name: the model name in the REST paths (compared, never used as a path on disk).
        limits: body, pixel and instance caps (default `Limits()`).
        max_batch: rows per model call when batching concurrent requests (1: off).
        batch_timeout_ms: how long a request waits for others to batch with.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"model name must be letters, digits, '_', '.' or '-'; got {name!r}")
    app = App(served, name, limits or Limits(), max_batch, batch_timeout_ms)
    routes = [
        Route("/", app.page, methods=["GET"]),
        Route("/page/config", app.page_config, methods=["GET"]),
        Route("/translate", app.translate, methods=["POST"]),
        Route("/v1/models/{rest:path}", app.models, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]

    async def not_found(request: Request, exc) -> Response:
        return _error(f"{request.method} {request.url.path}: {getattr(exc, 'detail', 'not found')}", exc.status_code)

    async def internal(request: Request, exc: Exception) -> Response:
        return _error(f"internal error: {type(exc).__name__}: {short_message(exc)}", 500)

    starlette = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found, Exception: internal})
    starlette.state.app = app
    return starlette
