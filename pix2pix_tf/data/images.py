"""The one rule for turning an image file into pixels, used by every entry point.

Training, validation, `data combine`, `data show`, `predict`, `evaluate` and `serve`
all decode through `decode`, so a file is the same picture everywhere:

* as a viewer shows it: the EXIF orientation (2-8) is applied, so a phone's
  portrait photo, stored sideways, is used upright;
* the first picture of a multi-picture file: the primary image of a phone's MPO
  JPEG (not its depth map or preview), the first frame of an animated GIF or a
  multi-page TIFF, at the size that frame is drawn at;
* 8-bit RGB: CMYK JPEGs converted, 16-bit PNGs scaled (not clipped), palettes
  expanded, alpha (and a palette's transparency) dropped, grayscale repeated.

Accepted: JPEG (baseline, progressive, CMYK, MPO), PNG, BMP, GIF, WebP, TIFF.
Anything else is refused with one line naming the file and these formats. The
pixel count is known from the header before a byte of pixel data is decoded, so
a cap (`max_pixels`) refuses a decompression bomb without decoding it. No
TensorFlow here.
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pix2pix_tf.errors import Pix2PixError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
FORMATS = ("JPEG", "MPO", "PNG", "BMP", "GIF", "WEBP", "TIFF")  # Pillow's names
ACCEPTED = "JPEG, PNG, BMP, GIF, WebP or TIFF"
# Pixel caps are the caller's (`max_pixels`); Pillow's warning below its own hard cap is noise.
# Set once here: warnings.catch_warnings per call is not thread-safe, and decoding runs in threads.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
_ORIENTATION = 0x0112
_TRANSPOSED = (5, 6, 7, 8)  # orientations that swap width and height


class ImageError(Pix2PixError):
    """An image that cannot be used; `too_large` when only its pixel count is at fault."""

    def __init__(self, message: str, too_large: bool = False):
        super().__init__(message)
        self.too_large = too_large


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside `folder`, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _open(data: bytes, what: str, max_pixels: int | None) -> Image.Image:
    """Opens `data` (headers only) and checks its format and the size of its first picture."""
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:  # Pillow's own cap (twice its warning's), from the header
        pillows = Image.MAX_IMAGE_PIXELS
        limit = f"the limit of {max_pixels}" if max_pixels and max_pixels < pillows else f"Pillow's limit of {pillows}"
        raise ImageError(f"{what}: over {limit} pixels", too_large=True) from None
    except UnidentifiedImageError:
        raise ImageError(f"{what}: not a readable image (not an image); expected {ACCEPTED}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise _broken(what, e) from None
    if image.format not in FORMATS:
        raise ImageError(f"{what}: expected {ACCEPTED}; found {image.format}")
    width, height = image.size  # frame 0, as it will be decoded (a GIF frame larger than its screen included)
    if max_pixels is not None and width * height > max_pixels:
        raise ImageError(f"{what}: {width}x{height} is {width * height} pixels; the limit is {max_pixels}", True)
    return image


def _broken(what: str, error: BaseException) -> ImageError:
    # Pillow's messages may embed reprs of its file objects; keep the words only.
    reason = str(error).split(" <", 1)[0].strip()[:200] or type(error).__name__
    return ImageError(f"{what}: not a readable image (broken or truncated: {reason}); expected {ACCEPTED}")


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation, read from the headers without decoding a pixel."""
    try:
        if image.format == "PNG":
            # Pillow's getexif() decodes a whole PNG to look for an eXIf chunk after the
            # pixels; the rule reads only the chunk before them, as the size check must.
            exif = Image.Exif()
            if image.info.get("exif"):
                exif.load(image.info["exif"])
        else:
            exif = image.getexif()
        value = exif.get(_ORIENTATION, 1)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError, struct.error):  # a damaged EXIF block is ignored
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def image_size(data: bytes, what: str = "image", max_pixels: int | None = None) -> tuple[int, int]:
    """(height, width) of the picture `decode` would return, read from the headers only.

    Raises:
        ImageError: not an accepted image, or over `max_pixels`.
    """
    image = _open(data, what, max_pixels)
    width, height = image.size
    return (width, height) if _orientation(image) in _TRANSPOSED else (height, width)


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grayscale: scale to 8 bits as TensorFlow's decoder does (Pillow would clip at 255).
        gray = (np.clip(np.asarray(image, np.int64), 0, 65535) >> 8).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # Pillow warns when a palette's transparency meets convert("RGB")
    return np.asarray(image.convert("RGB"))


def decode(data: bytes, what: str = "image", max_pixels: int | None = None) -> np.ndarray:
    """Encoded image bytes -> uint8 (height, width, 3) RGB, by the package's one decoding rule.

    Args:
        data: the file's bytes.
        what: how errors name the image (a path, "the uploaded image", ...).
        max_pixels: refuse pictures with more pixels than this, before decoding them.

    Raises:
        ImageError: not an accepted image, broken or truncated, or over `max_pixels`.
    """
    image = _open(data, what, max_pixels)
    try:
        image.load()  # frame 0 only: later frames of a GIF or MPO are never decoded
        array = _to_rgb(ImageOps.exif_transpose(image) if _orientation(image) != 1 else image)
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as e:
        raise _broken(what, e) from None
    return np.ascontiguousarray(array)


def read_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Reads and decodes one image file (see `decode`); errors name the file.

    Raises:
        ImageError: the file cannot be read or is not an accepted image.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ImageError(f"{path}: cannot read the file ({e.strerror or type(e).__name__})") from None
    return decode(data, str(path), max_pixels)
