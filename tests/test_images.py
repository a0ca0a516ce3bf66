"""The one decoding rule (`data.images`), and every entry point following it.

Each file is built here with Pillow, as phones, cameras and editors write them. An
oriented file must come out upright: the test picture has a red top-left block and a
green bottom-right one, and is wider than tall, so each of the 8 EXIF orientations
gives a different array when it is ignored.
"""

import base64
import io
import struct
import zlib

import httpx
import numpy as np
import pytest
import tensorflow as tf
from conftest import gif_frame_bomb, write_image
from PIL import Image

from pix2pix_tf.config import DataConfig
from pix2pix_tf.data import combine, find_pairs
from pix2pix_tf.data.images import ImageError, decode, image_size, read_image
from pix2pix_tf.data.pipeline import eval_dataset
from pix2pix_tf.errors import DataError

H, W = 32, 48


def upright() -> np.ndarray:
    image = np.zeros((H, W, 3), np.uint8)
    image[...] = (40, 60, 200)  # blue
    image[: H // 2, : W // 3] = (230, 20, 20)  # red, top left
    image[H // 2 :, 2 * W // 3 :] = (20, 200, 40)  # green, bottom right
    return image


# How a camera stores an upright picture for each EXIF orientation (the EXIF spec's
# definitions, written out independently of Pillow): the viewer undoes these.
STORED = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored
    3: lambda a: a[::-1, ::-1],  # upside down
    4: lambda a: a[::-1],  # mirrored vertically
    5: lambda a: a.transpose(1, 0, 2),  # mirrored along the main diagonal
    6: lambda a: np.rot90(a, 1),  # held upright: the sensor's rows run bottom to top
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],  # mirrored along the other diagonal
    8: lambda a: np.rot90(a, -1),
}
UNDO = {  # the inverse of each STORED transform
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _save(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _raw_pixels(data: bytes) -> np.ndarray:
    """The stored pixels, orientation ignored (what a decoder without EXIF support returns)."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _png16_rgb(array16: np.ndarray) -> bytes:
    """A 16-bit RGB PNG (Pillow cannot write one), from the format's definition."""
    height, width = array16.shape[:2]

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in array16)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def oriented_jpeg(orientation: int, fmt: str = "JPEG") -> bytes:
    """A camera JPEG (or a phone's multi-picture MPO, a depth map riding along) with an orientation tag."""
    stored = Image.fromarray(np.ascontiguousarray(STORED[orientation](upright())))
    extra = {"save_all": True, "append_images": [Image.new("RGB", (8, 8), (0, 255, 0))]} if fmt == "MPO" else {}
    return _save(stored, fmt, exif=_exif(orientation), quality=95, subsampling=0, **extra)


def _cases() -> dict[str, tuple[bytes, np.ndarray, float]]:
    """name -> (file bytes, the upright RGB picture expected, mean absolute tolerance)."""
    up = upright()
    cases = {}
    for orientation in (3, 6, 8):
        data = oriented_jpeg(orientation)
        cases[f"orientation{orientation}.jpg"] = (data, UNDO[orientation](_raw_pixels(data)), 0)
    phone = oriented_jpeg(6, "MPO")
    cases["phone_mpo_orientation6.jpg"] = (phone, UNDO[6](_raw_pixels(phone)), 0)
    progressive = _save(Image.fromarray(up), "JPEG", progressive=True, quality=95)
    cases["progressive.jpg"] = (progressive, up, 4)
    cases["cmyk.jpg"] = (_save(Image.fromarray(up).convert("CMYK"), "JPEG", quality=95), up, 6)
    gray16 = (np.arange(H * W).reshape(H, W) * 41).astype(np.uint16)
    cases["gray16.png"] = (
        _save(Image.fromarray(gray16), "PNG"),
        np.repeat((gray16 >> 8).astype(np.uint8)[..., None], 3, -1),
        0,
    )
    rgb16 = up.astype(np.uint16) * 257 + 100
    cases["rgb16.png"] = (_png16_rgb(rgb16), (rgb16 >> 8).astype(np.uint8), 0)
    palette = Image.fromarray(up).quantize(4)
    palette.info["transparency"] = 0
    cases["palette_transparent.png"] = (_save(palette, "PNG", transparency=0), up, 0)
    gray_alpha = Image.fromarray(up).convert("LA")
    gray = np.asarray(gray_alpha)[..., :1]
    cases["gray_alpha.png"] = (_save(gray_alpha, "PNG"), np.repeat(gray, 3, -1), 0)
    later = Image.new("RGB", (4 * W, 4 * H), (255, 255, 0))  # a later frame larger than the first is never used
    cases["animated.gif"] = (_save(Image.fromarray(up), "GIF", save_all=True, append_images=[later]), up, 0)
    cases["lossless.webp"] = (_save(Image.fromarray(up), "WEBP", lossless=True), up, 0)
    cases["plain.tiff"] = (_save(Image.fromarray(up), "TIFF"), up, 0)
    return cases


CASES = _cases()


def test_the_test_picture_tells_every_orientation_apart():
    variants = [UNDO[o](STORED[p](upright())) for o in STORED for p in STORED if o != p]
    assert not any(v.shape == upright().shape and np.array_equal(v, upright()) for v in variants)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied(orientation):
    data = oriented_jpeg(orientation)
    image = decode(data)
    np.testing.assert_array_equal(image, UNDO[orientation](_raw_pixels(data)))
    assert image.shape == (H, W, 3) and image_size(data) == (H, W)  # upright, from the headers alone
    assert tuple(image[2, 2].astype(int)) == pytest.approx((230, 20, 20), abs=8)  # red at the top left


@pytest.mark.parametrize("name", CASES)
def test_every_kind_of_file_decodes_to_the_picture_a_viewer_shows(name):
    data, expected, tolerance = CASES[name]
    image = decode(data, name)
    assert image.dtype == np.uint8 and image.shape == expected.shape == (H, W, 3)
    assert np.abs(image.astype(int) - expected).mean() <= tolerance
    assert image_size(data) == (H, W)


def test_16_bit_pngs_are_scaled_not_clipped():
    data, expected, _ = CASES["gray16.png"]
    assert decode(data).max() == expected.max() > 200  # clipping would leave nothing above 255 >> 8


def test_a_gif_frame_bomb_is_not_decoded():
    # A 64 x 64 screen whose second frame is 8192 x 8192: only the first frame counts.
    data = gif_frame_bomb(8192)
    assert len(data) < 100_000 and tf.io.decode_image(data, expand_animations=False).shape == (8192, 8192, 3)
    assert image_size(data, max_pixels=64 * 64) == (64, 64)
    assert decode(data, max_pixels=64 * 64).shape == (64, 64, 3)


def test_the_pixel_cap_is_checked_before_decoding():
    big = _save(Image.new("RGB", (300, 200)), "PNG")
    with pytest.raises(ImageError, match=r"big\.png: 300x200 is 60000 pixels; the limit is 50000") as error:
        decode(big, "big.png", max_pixels=50_000)
    assert error.value.too_large


@pytest.mark.parametrize(
    "data,message",
    [
        (_save(Image.new("RGB", (16, 16)), "ICO"), "expected JPEG, PNG, BMP, GIF, WebP or TIFF; found ICO"),
        (b"text, not pixels", r"not a readable image \(not an image\); expected JPEG, PNG, BMP, GIF, WebP or TIFF"),
        (oriented_jpeg(6)[:300], r"not a readable image \(broken or truncated"),
    ],
    ids=["ico", "text", "truncated"],
)
def test_other_files_are_refused_in_one_line_naming_the_file(tmp_path, data, message):
    path = tmp_path / "x.img"
    path.write_bytes(data)
    with pytest.raises(ImageError, match=rf"^{tmp_path}/x\.img: {message}") as error:
        read_image(path)
    assert "\n" not in str(error.value) and "object at 0x" not in str(error.value)


# --- every entry point ---------------------------------------------------------------


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A/train: every kind of file; B/train: the upright picture each should decode to, as PNG."""
    root = tmp_path_factory.mktemp("images")
    for name, (data, expected, _) in CASES.items():
        stem = name.replace(".", "_")
        (root / "A/train").mkdir(parents=True, exist_ok=True)
        (root / "A/train" / f"{stem}{'.' + name.rsplit('.', 1)[1]}").write_bytes(data)
        write_image(root / "B/train" / f"{stem}.png", expected)
    return root


def test_training_and_validation_use_each_file_upright(folders):
    cfg = DataConfig(image_size=32)
    pairs = find_pairs(folders, "train", cfg)  # a sideways A would be refused here: its size differs from B's
    assert len(pairs) == len(CASES) and not pairs.skipped
    for a, b, name in eval_dataset(pairs, cfg):
        stem = name.numpy()[0].decode()
        tolerance = CASES[stem.rsplit("_", 1)[0] + "." + stem.rsplit("_", 1)[1]][2]
        assert np.abs(a.numpy() - b.numpy()).mean() * 127.5 <= tolerance + 0.5, stem


def test_combine_pairs_each_photo_upright_with_its_label_map(folders, tmp_path):
    report = combine(folders / "A", folders / "B", tmp_path / "combined")
    assert report.written == len(CASES) and not report.unreadable and not report.size_mismatch
    for path in (tmp_path / "combined/train").iterdir():
        pair = np.asarray(Image.open(path).convert("RGB")).astype(int)
        assert pair.shape == (H, 2 * W, 3)
        assert np.abs(pair[:, :W] - pair[:, W:]).mean() < 8, path.name  # the halves agree: same way up


def test_data_show_reads_every_kind_of_file(folders, tmp_path):
    from pix2pix_tf.data.show import show

    out = show(folders, tmp_path / "grid.png", DataConfig(image_size=32), count=len(CASES))
    assert Image.open(out).size[0] > 100


@pytest.fixture(scope="module")
def shipped():
    from pix2pix_tf.inference import load
    from pix2pix_tf.shipped import shipped_model

    return load(shipped_model() / "saved_model")


def _reference(shipped, expected, native=False):
    return shipped(expected, native_size=native)


def test_predict_translates_each_file_as_a_viewer_shows_it(folders, shipped, tmp_path):
    from pix2pix_tf.cli import main
    from pix2pix_tf.shipped import shipped_model

    args = ["--model", str(shipped_model()), "--input", str(folders / "A/train"), "--output", str(tmp_path / "out")]
    assert main(["predict", *args]) == 0
    for name, (_, expected, tolerance) in CASES.items():
        stem = name.replace(".", "_")
        out = np.asarray(Image.open(tmp_path / "out" / f"{stem}.png")).astype(int)
        assert out.shape == (H, W, 3), name  # the input's upright size
        assert np.abs(out - _reference(shipped, expected)).mean() <= 2 + tolerance, name
    sideways = _reference(shipped, np.ascontiguousarray(np.rot90(CASES["orientation3.jpg"][1], 2)))
    assert np.abs(sideways.astype(int) - _reference(shipped, CASES["orientation3.jpg"][1])).mean() > 5  # can fail


def test_evaluate_sees_each_input_upright(folders, tmp_path):
    from pix2pix_tf.config import Config
    from pix2pix_tf.evaluate import evaluate
    from pix2pix_tf.models import build_generator

    config = Config().replace(data={"image_size": 32})
    metrics = evaluate(build_generator(32, ngf=8), config, folders, "train", tmp_path / "ev")
    assert len(metrics["images"]) == len(CASES)
    for name, (_, expected, _) in CASES.items():
        shown = np.asarray(Image.open(tmp_path / "ev/images" / f"{name.replace('.', '_')}_input.png")).astype(int)
        # The top-left corner is the expected picture's (red for the oriented photos): upright.
        assert np.abs(shown[1, 1] - expected[1, 1]).max() <= 12, name


def _served_app():
    from pix2pix_tf.serve import create_app, load_served_model

    return create_app(load_served_model())


@pytest.fixture(scope="module")
def call():
    app = _served_app()

    def request(method, url, **kwargs):
        import asyncio

        async def go():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(go())

    return request


@pytest.mark.parametrize("name", CASES)
def test_serve_translates_each_file_upright_on_every_route(call, shipped, name):
    data, expected, tolerance = CASES[name]
    reference = _reference(shipped, expected).astype(int)
    headers = {"content-type": "application/octet-stream"}
    via_translate = call("POST", "/translate", content=data, headers=headers)
    assert via_translate.status_code == 200, via_translate.text
    body = {"signature_name": "translate_bytes", "instances": [{"b64": base64.b64encode(data).decode()}]}
    via_predict = call("POST", "/v1/models/pix2pix:predict", json=body)
    assert via_predict.status_code == 200, via_predict.text
    png = base64.b64decode(via_predict.json()["predictions"][0]["b64"])
    for out in (via_translate.content, png):
        out = np.asarray(Image.open(io.BytesIO(out))).astype(int)
        assert out.shape == (H, W, 3) and np.abs(out - reference).mean() <= 2 + tolerance
    native = call("POST", "/translate?native_size=true", content=data, headers=headers)
    assert native.status_code == 200, native.text
    out = np.asarray(Image.open(io.BytesIO(native.content))).astype(int)
    assert out.shape == (H, W, 3) and np.abs(out - _reference(shipped, expected, native=True)).mean() <= 2 + tolerance


def test_serve_refuses_other_formats_with_the_same_line(call):
    ico = _save(Image.new("RGB", (16, 16)), "ICO")
    reply = call("POST", "/translate", content=ico, headers={"content-type": "application/octet-stream"})
    assert reply.status_code == 400
    assert reply.json()["error"] == "the uploaded image: expected JPEG, PNG, BMP, GIF, WebP or TIFF; found ICO"


def test_find_pairs_refuses_a_broken_webp_by_name(tmp_path):
    write_image(tmp_path / "train/ok.png", np.zeros((32, 64, 3)))
    (tmp_path / "train/bad.webp").write_bytes(b"RIFF\x10\x00\x00\x00WEBPVP8 junk")
    with pytest.raises(DataError, match=r"bad\.webp: not a readable image"):
        find_pairs(tmp_path, "train", DataConfig(image_size=32))


def test_a_pil_image_is_used_upright_as_a_file_is(shipped):
    data = oriented_jpeg(6)
    from_pil = shipped(Image.open(io.BytesIO(data)))
    assert from_pil.shape == (H, W, 3)
    np.testing.assert_array_equal(from_pil, shipped(decode(data)))
