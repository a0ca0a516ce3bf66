"""TensorFlow Serving's REST predict format: JSON <-> tensors, with every check a server needs.

Follows https://www.tensorflow.org/tfx/serving/api_rest: the row format
(`instances`, reply `predictions`) and the columnar format (`inputs`, reply
`outputs`); `signature_name` (default `serving_default`); binary values as
`{"b64": ...}` for string tensors, and outputs whose name ends in `_bytes` returned
the same way. Everything here is pure: no model is run.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import gc
import json
import warnings

import numpy as np
import orjson

from pix2pix_tf.data.images import ImageError, image_size
from pix2pix_tf.serve.model import Signature, TensorSpec


class RequestError(Exception):
    """A request the server answers with `{"error": message}` and `status`."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may ask for.

    Attributes:
        max_body_bytes: request body size.
        max_pixels: pixels of one image (width x height), checked from the image
            header before anything is decoded.
        max_instances: images (rows) in one predict request.
        max_request_pixels: pixels of all the images of one request together.
        max_native_queue: native-size requests that may wait for the one native slot;
            more are answered 503 (each waiting request holds only its body).
    """

    max_body_bytes: int = 32 * 2**20
    max_pixels: int = 4096 * 4096
    max_instances: int = 64
    max_request_pixels: int = 4096 * 4096
    max_native_queue: int = 4


def check_image_bytes(data: bytes, limits: Limits, what: str) -> tuple[int, int]:
    """Checks `data`'s format and pixel count from its headers; returns the (height, width) it decodes to.

    Nothing is decoded here: a PNG claiming 50000 x 50000, or a GIF whose first frame
    is larger than its screen, is refused before a byte of it is decoded. The size is
    that of the picture the package's decoding rule uses (`data.images`: the first
    frame, turned upright by its EXIF orientation); later GIF frames are never decoded.
    """
    try:
        return image_size(data, what, limits.max_pixels)
    except ImageError as e:
        raise RequestError(str(e), 413 if e.too_large else 400) from None


def _check_request_pixels(pixels: int, limits: Limits, what: str) -> None:
    # One request may not make the server hold more than this many pixels at once.
    if pixels > limits.max_request_pixels:
        raise RequestError(f"{what}: {pixels} pixels in one request; the limit is {limits.max_request_pixels}", 413)


def _b64(value, what: str) -> bytes:
    if not (isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str)):
        raise RequestError(f'{what}: expected {{"b64": "<base64 string>"}} for a binary value; got {short_repr(value)}')
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(f"{what}: not valid base64") from None


def short_repr(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def to_tensor(values, spec: TensorSpec, limits: Limits, multiple: int, what: str) -> np.ndarray:
    """A batch of JSON values -> the array `spec` takes, or a RequestError saying what is wrong."""
    if not isinstance(values, list) or not values:
        raise RequestError(f"{what}: expected a non-empty list (one value per instance); got {short_repr(values)}")
    if len(values) > limits.max_instances:
        raise RequestError(f"{what}: {len(values)} instances; the limit is {limits.max_instances}", 413)
    if spec.dtype.name == "string":
        blobs = [_b64(v, f"{what}[{i}]") for i, v in enumerate(values)]
        if spec.name.endswith("_bytes"):
            pixels = 0
            for i, blob in enumerate(blobs):
                height, width = check_image_bytes(blob, limits, f"{what}[{i}]")
                pixels += height * width
            _check_request_pixels(pixels, limits, what)
        return np.array(blobs, dtype=object)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # ragged lists warn before they fail in NumPy
            array = np.asarray(values)
    except (ValueError, TypeError, Warning):
        raise RequestError(f"{what}: not a rectangular array of numbers") from None
    if array.dtype.kind not in "iuf":
        raise RequestError(f"{what}: expected numbers ({spec.dtype.name}); got {array.dtype.kind!r}-kind values")
    expected = "x".join("N" if d is None else str(d) for d in spec.shape)
    if array.ndim != len(spec.shape) or any(d is not None and d != n for d, n in zip(spec.shape, array.shape)):
        raise RequestError(f"{what}: expected shape {expected}; got {'x'.join(map(str, array.shape))}")
    if array.ndim == 4:
        height, width = array.shape[1:3]
        if height * width > limits.max_pixels:
            raise RequestError(f"{what}: {width}x{height} pixels; the limit is {limits.max_pixels}", 413)
        _check_request_pixels(len(array) * height * width, limits, what)
        if spec.shape[1] is None and (height % multiple or width % multiple or not height or not width):
            raise RequestError(
                f"{what}: height and width must be positive multiples of {multiple}; got {height}x{width}"
            )
    if spec.dtype.name == "uint8":
        if not np.all(np.isfinite(array)) or (array.dtype.kind == "f" and not np.all(array == np.round(array))):
            raise RequestError(f"{what}: expected whole numbers 0-255 (uint8)")
        if array.min() < 0 or array.max() > 255:
            raise RequestError(f"{what}: expected values 0-255 (uint8); got {array.min()}..{array.max()}")
    with np.errstate(over="ignore"):
        converted = array.astype(spec.dtype.as_numpy_dtype)
    # Checked after the cast: 1e300 is finite in JSON's float64 but infinite in float32.
    # (TF Serving accepts NaN and Infinity; here they are refused, as no image holds them.)
    if converted.dtype.kind == "f" and not np.all(np.isfinite(converted)):
        raise RequestError(f"{what}: NaN, infinite or out-of-range values for {spec.dtype.name}")
    return converted


def json_value_cap(limits: Limits, image_size: int, channels: int) -> int:
    """The most JSON values (numbers, strings, lists, objects) a predict body may hold.

    What the largest request within the limits needs: images of the model's size,
    `max_instances` of them or `max_request_pixels` in all, as nested lists; per pixel,
    `channels` numbers and its list, and at most one row list (shipped model: 262,144
    pixels, 1.3M values). Parsing holds the GIL, so this cap, not the body's size, bounds
    how long a request stalls the others: 30 MB of `[[], [], ...]` is 10M values.
    """
    pixels = min(limits.max_request_pixels, limits.max_instances * image_size * image_size)
    return pixels * (channels + 2) + limits.max_instances + 64


def loads(body: bytes, max_values: int):
    """A predict body's JSON, refused (413) before parsing when it holds more than `max_values` values.

    Parsed with orjson (several times faster than `json`, and refuses nesting deeper than
    1024). TF Serving's `NaN` / `Infinity` tokens are not JSON: a body with them is read
    by `json` instead, within the same cap, so that the reply can say what is wrong.
    """
    if not body.strip():
        raise RequestError("empty request body; expected JSON with instances or inputs")
    # Every value but the first of a list or object follows a comma; each list or object
    # counts itself. A byte count, so it never builds an object (about 10 ms for 32 MB).
    values = body.count(b",") + body.count(b"[") + body.count(b"{")
    if values > max_values:
        raise RequestError(
            f"request of up to {values} JSON values (numbers, lists, objects); the limit is {max_values}: "
            "--max-instances images at the model's size, within --max-request-pixels (JSON parsing stalls "
            "the server, so larger images, serving_any_size included, go as bytes: translate_bytes, or "
            "POST /translate?native_size=true)",
            413,
        )
    collecting = gc.isenabled()
    # Many new lists trigger collections that cost more than the parse; orjson holds the
    # GIL throughout, so no other thread runs while the collector is off.
    gc.disable()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        message = str(e)
        if b"NaN" not in body and b"Infinity" not in body:
            raise RequestError(f"malformed JSON: {'nested too deeply' if 'depth' in message else message}") from None
    finally:
        if collecting:
            gc.enable()
    try:
        return json.loads(body)
    except RecursionError:
        raise RequestError("malformed JSON: nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, bad UTF-8, an integer of thousands of digits
        raise RequestError(f"malformed JSON: {e}") from None


def _some(keys) -> str:
    """At most five of `keys`, each shortened: an error never echoes a whole request."""
    keys = sorted(map(str, keys))
    shown = ", ".join(short_repr(k) for k in keys[:5])
    return f"[{shown}{f', ... ({len(keys)} in all)' if len(keys) > 5 else ''}]"


def parse_predict(body, signature: Signature, limits: Limits, multiple: int) -> tuple[dict[str, np.ndarray], str]:
    """A predict request's JSON -> (input tensors by name, "row" or "columnar")."""
    if not isinstance(body, dict):
        raise RequestError(f"expected a JSON object; got {type(body).__name__}")
    if ("instances" in body) == ("inputs" in body):
        raise RequestError('give exactly one of "instances" (row format) or "inputs" (columnar format)')
    unknown = set(body) - {"instances", "inputs", "signature_name"}
    if unknown:
        raise RequestError(f"unknown request keys {_some(unknown)}")
    names = list(signature.inputs)
    if "instances" in body:
        instances, layout = body["instances"], "row"
        if not isinstance(instances, list) or not instances:
            raise RequestError('"instances" must be a non-empty list')
        if _named(instances[0], names):
            for i, instance in enumerate(instances):
                if not _named(instance, names) or set(instance) != set(names):
                    raise RequestError(f"instances[{i}]: expected an object with the inputs {names}")
            columns = {name: [instance[name] for instance in instances] for name in names}
        elif len(names) == 1:
            columns = {names[0]: instances}
        else:
            raise RequestError(f"each instance must be an object with the inputs {names}")
    else:
        inputs, layout = body["inputs"], "columnar"
        if _named(inputs, names):
            if set(inputs) != set(names):
                raise RequestError(f'"inputs" must name exactly the inputs {names}; got {_some(inputs)}')
            columns = dict(inputs)
        elif len(names) == 1:
            columns = {names[0]: inputs}
        else:
            raise RequestError(f'"inputs" must be an object with the inputs {names}')
    tensors = {
        name: to_tensor(values, signature.inputs[name], limits, multiple, name) for name, values in columns.items()
    }
    if len({len(t) for t in tensors.values()}) > 1:
        raise RequestError("every input must have the same number of instances")
    return tensors, layout


def _named(value, names: list[str]) -> bool:
    # {"b64": ...} is a value, not an object of named inputs.
    return isinstance(value, dict) and set(value) != {"b64"} and bool(set(value) & set(names))


def _json_value(array: np.ndarray, name: str, numpy: bool):
    if array.dtype == object or array.dtype.kind in "SO":
        if name.endswith("_bytes"):
            return [{"b64": base64.b64encode(bytes(v)).decode()} for v in array]
        return [bytes(v).decode("utf-8", "replace") for v in array]
    return np.ascontiguousarray(array) if numpy else array.tolist()


def format_predict(outputs: dict[str, np.ndarray], layout: str, numpy: bool = False) -> dict:
    """Output tensors -> TF Serving's reply: {"predictions": [...]} or {"outputs": ...}.

    With `numpy`, numbers stay in their arrays (for orjson); else they are Python lists.
    """
    values = {name: _json_value(array, name, numpy) for name, array in outputs.items()}
    if layout == "columnar":
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    count = len(next(iter(values.values())))
    return {"predictions": [{name: v[i] for name, v in values.items()} for i in range(count)]}


def render_predict(outputs: dict[str, np.ndarray], layout: str) -> bytes:
    """TF Serving's reply as JSON bytes.

    orjson writes it from the arrays: 64 float images of 64 x 64 take ~50 ms, against
    ~1.5 s through Python lists and `json`, time in which the GIL is held and every
    other request waits. Inputs far outside the model's [-1, 1] overflow it; TF Serving
    answers those with the non-standard tokens `NaN`, `Infinity`, `-Infinity` ("JSON
    conformance" in its REST API docs), which Python's and most JSON readers accept.
    orjson would write null for them, so such replies are written by `json`.
    """
    if all(np.isfinite(a).all() for a in outputs.values() if a.dtype.kind == "f"):
        try:
            return orjson.dumps(format_predict(outputs, layout, numpy=True), option=orjson.OPT_SERIALIZE_NUMPY)
        except orjson.JSONEncodeError:  # a dtype orjson does not write
            pass
    reply = format_predict(outputs, layout)
    return json.dumps(reply, ensure_ascii=False, allow_nan=True, separators=(",", ":")).encode()
