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
import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

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
    """

    max_body_bytes: int = 32 * 2**20
    max_pixels: int = 4096 * 4096
    max_instances: int = 64
    max_request_pixels: int = 4096 * 4096


def check_image_bytes(data: bytes, limits: Limits, what: str) -> tuple[int, int]:
    """Checks that `data` is a whole JPEG/PNG/BMP/GIF within the pixel cap; returns (height, width).

    The size comes from the header, so a PNG claiming 50000 x 50000 is refused
    before a byte of it is decoded.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if image.format not in ("JPEG", "PNG", "BMP", "GIF"):
                raise RequestError(f"{what}: expected a JPEG, PNG, BMP or GIF image; found {image.format}")
            if width * height > limits.max_pixels:
                raise RequestError(
                    f"{what}: {width}x{height} is {width * height} pixels; the limit is {limits.max_pixels}", 413
                )
            image.load()  # a truncated or corrupt file fails here, not inside the model
    except RequestError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:  # PIL's own, larger cap
        raise RequestError(f"{what}: over the limit of {limits.max_pixels} pixels ({e})", 413) from None
    except UnidentifiedImageError as e:
        raise RequestError(f"{what}: not an image ({e})") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise RequestError(f"{what}: a broken or truncated image ({e})") from None
    return height, width


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


def parse_predict(body, signature: Signature, limits: Limits, multiple: int) -> tuple[dict[str, np.ndarray], str]:
    """A predict request's JSON -> (input tensors by name, "row" or "columnar")."""
    if not isinstance(body, dict):
        raise RequestError(f"expected a JSON object; got {type(body).__name__}")
    if ("instances" in body) == ("inputs" in body):
        raise RequestError('give exactly one of "instances" (row format) or "inputs" (columnar format)')
    unknown = set(body) - {"instances", "inputs", "signature_name"}
    if unknown:
        raise RequestError(f"unknown request keys {sorted(unknown)}")
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
                raise RequestError(f'"inputs" must name exactly the inputs {names}; got {sorted(inputs)}')
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


def _json_value(array: np.ndarray, name: str):
    if array.dtype == object or array.dtype.kind in "SO":
        if name.endswith("_bytes"):
            return [{"b64": base64.b64encode(bytes(v)).decode()} for v in array]
        return [bytes(v).decode("utf-8", "replace") for v in array]
    return array.tolist()


def format_predict(outputs: dict[str, np.ndarray], layout: str) -> dict:
    """Output tensors -> TF Serving's reply: {"predictions": [...]} or {"outputs": ...}."""
    values = {name: _json_value(array, name) for name, array in outputs.items()}
    if layout == "columnar":
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    count = len(next(iter(values.values())))
    return {"predictions": [{name: v[i] for name, v in values.items()} for i in range(count)]}
