"""The server: TF Serving's REST API, the upload endpoint, limits, bad input, fuzzing, batching, a real process."""

import asyncio
import base64
import io
import json
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import LiveServer, gif_frame_bomb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pix2pix_tf.data.images import decode
from pix2pix_tf.inference import load
from pix2pix_tf.serve import Limits, create_app, load_served_model
from pix2pix_tf.serve.batching import Batcher
from pix2pix_tf.shipped import shipped_model

URL = "/v1/models/pix2pix"
# /translate refuses the types a cross-site form can send (and none at all): raw bytes say what they are,
# and a multipart form carries a header such a form cannot set (tests/test_serve_hostile.py).
PNG = {"content-type": "image/png"}
SCRIPT = {"x-requested-with": "test"}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def served(shipped_served):
    return shipped_served  # the shipped demo model, loaded once a session (tests/conftest.py)


def _request(app, method, url, **kwargs):
    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.request(method, url, **kwargs)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def call(served):
    app = create_app(served, limits=Limits(max_body_bytes=2**20, max_pixels=512 * 512, max_instances=8))
    return lambda method, url, **kwargs: _request(app, method, url, **kwargs)


def _png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _label_map():
    return np.asarray(Image.open(REPO / "pix2pix_tf/webapp/static/examples/facade_1.png"))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_status_versions_and_metadata(call):
    available = {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    for url in (URL, f"{URL}/versions/1"):
        reply = call("GET", url)
        assert reply.status_code == 200 and reply.json() == {"model_version_status": [available]}
    meta = call("GET", f"{URL}/metadata").json()
    assert meta["model_spec"] == {"name": "pix2pix", "signature_name": "", "version": "1"}
    defs = meta["metadata"]["signature_def"]["signature_def"]
    assert set(defs) == {"serving_default", "translate_image", "translate_bytes", "serving_any_size"}
    image = defs["serving_default"]["inputs"]["input_image"]
    assert image["dtype"] == "DT_FLOAT" and [d["size"] for d in image["tensor_shape"]["dim"]] == ["-1", "64", "64", "3"]
    assert defs["translate_bytes"]["outputs"]["output_bytes"]["dtype"] == "DT_STRING"
    assert call("GET", f"{URL}/versions/1/metadata").json() == meta


def test_predict_matches_the_model_in_every_format(call):
    labels = _label_map()
    reference = load(shipped_model() / "saved_model")(labels)  # uint8 at the input size
    x = (labels / 127.5 - 1.0)[None].tolist()
    rows = call("POST", f"{URL}:predict", json={"instances": x}).json()["predictions"]
    columns = call("POST", f"{URL}/versions/1:predict", json={"inputs": {"input_image": x}}).json()["outputs"]
    np.testing.assert_allclose(rows, columns)
    assert np.abs(np.round((np.array(rows[0]) + 1) * 127.5) - reference).max() <= 1
    uint8 = call("POST", f"{URL}:predict", json={"signature_name": "translate_image", "instances": [labels.tolist()]})
    assert np.abs(np.array(uint8.json()["predictions"][0]) - reference.astype(int)).max() <= 1
    body = {"signature_name": "translate_bytes", "instances": [{"b64": _b64(_png(labels))}]}
    png = base64.b64decode(call("POST", f"{URL}:predict", json=body).json()["predictions"][0]["b64"])
    assert np.abs(np.asarray(Image.open(io.BytesIO(png))).astype(int) - reference).max() <= 1
    wide = np.concatenate([labels, labels], axis=1) / 127.5 - 1.0  # 64 x 128: a multiple of 64
    native = call("POST", f"{URL}:predict", json={"signature_name": "serving_any_size", "instances": [wide.tolist()]})
    assert np.array(native.json()["predictions"]).shape == (1, 64, 128, 3)


def test_inputs_that_overflow_the_model_get_tf_servings_nan_tokens_not_a_500(call):
    # Found by the fuzz test below: 3e38 is a finite float32, but the generator's
    # activations overflow on it and the reply holds NaN, which strict JSON cannot say.
    reply = call("POST", f"{URL}:predict", json={"instances": np.full((1, 64, 64, 3), 3e38).tolist()})
    assert reply.status_code == 200
    assert b"NaN" in reply.content
    assert np.isnan(np.array(json.loads(reply.content)["predictions"])).any()


def test_upload_endpoint(call):
    labels = _label_map()
    reference = load(shipped_model() / "saved_model")(labels)
    raw = call("POST", "/translate", content=_png(labels), headers={"content-type": "image/png"})
    assert raw.status_code == 200 and raw.headers["content-type"] == "image/png"
    assert np.abs(np.asarray(Image.open(io.BytesIO(raw.content))).astype(int) - reference).max() <= 1
    big = np.asarray(Image.fromarray(labels).resize((150, 90)))
    form = call(
        "POST", "/translate?native_size=true", files={"file": ("big.png", _png(big), "image/png")}, headers=SCRIPT
    )
    out = np.asarray(Image.open(io.BytesIO(form.content)))
    assert form.status_code == 200 and out.shape == (90, 150, 3)
    expected = load(shipped_model() / "saved_model")(big, native_size=True)  # padded to 128 x 192, cropped back
    assert np.abs(out.astype(int) - expected).max() <= 1
    assert np.abs(out.astype(int) - load(shipped_model() / "saved_model")(big)).mean() > 3  # not the model-size path


def _truncated_png():
    return _png(np.random.default_rng(0).integers(0, 256, (64, 64, 3)))[:300]


def _huge_png_header(width=50000, height=50000):
    """A valid PNG signature and IHDR claiming width x height, and no pixel data at all."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


BAD_PREDICTS = [
    (b"", 400, "empty request body"),
    (b"{not json", 400, "malformed JSON"),
    (b'{"instances": [' + b"9" * 5000 + b"]}", 400, "malformed JSON"),
    (b'{"signature_name": ' + b"9" * 5000 + b', "instances": [1]}', 400, "malformed JSON"),
    (
        json.dumps({"instances": np.full((1, 64, 64, 3), 1e300).tolist()}).encode(),
        400,
        "out-of-range values for float32",
    ),
    (json.dumps({"instances": [[[[float("nan")] * 3] * 64] * 64]}).encode(), 400, "NaN, infinite"),
    (b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
    (b"[1, 2]", 400, "expected a JSON object; got list"),
    (b'{"instances": [[1]], "inputs": [[1]]}', 400, 'exactly one of "instances"'),
    (b'{"signature_name": "serving_default"}', 400, 'exactly one of "instances"'),
    (b'{"signature_name": "classify", "instances": [1]}', 400, "'classify' not found in signature def"),
    (b'{"instances": [["a", "b"]]}', 400, "expected numbers"),
    (b'{"instances": [[1, 2, 3]]}', 400, "expected shape Nx64x64x3; got 1x3"),
    (b'{"instances": [[[1], [1, 2]]]}', 400, "not a rectangular array"),
    (b'{"signature_name": "translate_image", "instances": [[[[300, 0, 0]]]]}', 400, "expected shape"),
    (b'{"signature_name": "translate_bytes", "instances": [{"b64": "%%%"}]}', 400, "not valid base64"),
    (b'{"signature_name": "translate_bytes", "instances": ["raw"]}', 400, 'expected {"b64"'),
    (
        json.dumps({"signature_name": "translate_bytes", "instances": [{"b64": _b64(b"hello world" * 9)}]}).encode(),
        400,
        "not an image",
    ),
    (
        json.dumps({"signature_name": "translate_bytes", "instances": [{"b64": _b64(_truncated_png())}]}).encode(),
        400,
        "broken or truncated",
    ),
    (
        json.dumps({"signature_name": "translate_bytes", "instances": [{"b64": _b64(_huge_png_header())}]}).encode(),
        413,
        "over the limit of 262144 pixels",
    ),
    (json.dumps({"instances": [[0]] * 9}).encode(), 413, "9 instances; the limit is 8"),
    (b'{"instances": [' + b"0," * 600_000 + b"0]}", 413, "request body of"),
    (
        json.dumps({"signature_name": "serving_any_size", "instances": np.zeros((1, 48, 64, 3)).tolist()}).encode(),
        400,
        "multiples of 64",
    ),
]


@pytest.mark.parametrize("body,status,message", BAD_PREDICTS, ids=[m for _, _, m in BAD_PREDICTS])
def test_bad_predict_requests_are_answered_and_the_server_stays_up(call, body, status, message):
    reply = call("POST", f"{URL}:predict", content=body, headers={"content-type": "application/json"})
    assert (reply.status_code, message in reply.json()["error"]) == (status, True), reply.json()
    assert call("GET", URL).status_code == 200


def test_wrong_paths_methods_models_and_versions(call):
    wrong = call("GET", f"{URL}:predict")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert call("HEAD", URL).status_code == 200
    assert call("POST", URL, json={}).status_code == 405
    assert call("DELETE", f"{URL}/metadata").status_code == 405
    assert call("POST", f"{URL}:classify", json={}).status_code == 404
    other = call("GET", "/v1/models/other")
    assert other.status_code == 404 and "Servable not found" in other.json()["error"]
    assert call("GET", f"{URL}/versions/2").status_code == 404
    assert call("GET", "/v1/models/..%2F..%2Fetc%2Fpasswd").status_code == 404  # names are compared, never opened
    assert call("GET", "/nowhere").status_code == 404


def test_requests_that_would_hold_too_many_pixels(served):
    app = create_app(served, limits=Limits(max_pixels=200_000, max_request_pixels=300_000))
    thin = _png(np.zeros((1, 150_000, 3)))  # 150,000 pixels sent, but 64 x 150,016 once padded
    reply = _request(app, "POST", "/translate?native_size=true", content=thin, headers=PNG)
    assert reply.status_code == 413 and "padded to multiples of 64" in reply.json()["error"]
    four = {"b64": _b64(_png(np.zeros((300, 300, 3))))}  # 90,000 each, 360,000 together
    body = {"signature_name": "translate_bytes", "instances": [four] * 4}
    reply = _request(app, "POST", f"{URL}:predict", json=body)
    assert reply.status_code == 413 and "360000 pixels in one request" in reply.json()["error"]


def test_a_model_without_a_signature_a_route_needs(served):
    import dataclasses

    older = dataclasses.replace(
        served, signatures={k: v for k, v in served.signatures.items() if k != "serving_any_size"}
    )
    reply = _request(create_app(older), "POST", "/translate?native_size=true", content=_png(_label_map()), headers=PNG)
    assert reply.status_code == 400 and "no serving_any_size signature" in reply.json()["error"]


def test_one_bad_image_in_a_batch_fails_only_its_own_request(served):
    # A truncated PNG passes the header check and fails to decode inside the batch.
    bad, good = _truncated_png(), _png(_label_map())
    app = create_app(served, max_batch=8, batch_timeout_ms=300)

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            bodies = [bad if i == 2 else good for i in range(6)]
            return await asyncio.gather(
                *(
                    client.post(
                        f"{URL}:predict", json={"signature_name": "translate_bytes", "instances": [{"b64": _b64(b)}]}
                    )
                    for b in bodies
                )
            )

    replies = asyncio.run(go())
    assert [r.status_code for r in replies] == [200, 200, 400, 200, 200, 200]
    assert "image_bytes[0]: not a readable image (broken or truncated" in replies[2].json()["error"]


def test_bad_uploads(call):
    assert call("POST", "/translate", content=b"", headers=PNG).status_code == 400
    assert "not an image" in call("POST", "/translate", content=b"text, not pixels", headers=PNG).json()["error"]
    assert call("POST", "/translate", content=_truncated_png(), headers=PNG).status_code == 400
    assert call("POST", "/translate", content=_huge_png_header(), headers=PNG).status_code == 413
    reply = call("POST", "/translate", files={"other": ("x.png", _png(_label_map()), "image/png")}, headers=SCRIPT)
    assert reply.status_code == 400 and 'without a "file" field' in reply.json()["error"]
    assert call("GET", "/translate").status_code == 405
    for content_type in ("multipart/form-data", "Multipart/Form-Data; boundary=xyz"):
        reply = call("POST", "/translate", content=b"junk", headers={"content-type": content_type, **SCRIPT})
        assert reply.status_code == 400 and "bad multipart upload" in reply.json()["error"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(["instances", "inputs", "signature_name", "input_image", "image", "image_bytes", "b64", "x"])
SIGNATURES = st.sampled_from(["serving_default", "translate_image", "translate_bytes", "serving_any_size", "nope"])
BODIES = st.one_of(
    JSON.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(KEYS, JSON | SIGNATURES, max_size=3).map(lambda v: json.dumps(v).encode()),
    st.builds(
        lambda sig, values: json.dumps({"signature_name": sig, "instances": values}).encode(),
        SIGNATURES,
        st.lists(JSON | st.builds(lambda b: {"b64": _b64(b)}, st.binary(max_size=64)), min_size=1, max_size=3),
    ),
    st.binary(max_size=200),
    # Well-shaped bodies with any values: each signature's exact shape, odd numbers.
    st.builds(
        lambda value, sig: json.dumps(
            {"signature_name": sig, "instances": np.full((1, 64, 64, 3), value).tolist()}
        ).encode(),
        st.floats() | st.integers(-(2**70), 2**70),
        st.sampled_from(["serving_default", "translate_image", "serving_any_size"]),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, path=st.sampled_from([f"{URL}:predict", "/translate", f"{URL}/versions/1:predict"]))
def test_fuzzed_requests_never_get_a_5xx(call, body, path):
    reply = call("POST", path, content=body, headers=PNG)
    assert reply.status_code < 500, (reply.status_code, reply.text[:300])
    if reply.status_code >= 400:
        assert isinstance(reply.json()["error"], str)
    assert call("GET", URL).status_code == 200  # still serving


def test_batching_combines_concurrent_requests_and_returns_each_its_own(served):
    calls = []
    signature = served.signatures["serving_default"]

    def counted(**inputs):
        calls.append(len(inputs["input_image"]))
        return signature(**inputs)

    images = [np.full((1, 64, 64, 3), v, np.float32) for v in np.linspace(-0.9, 0.9, 8)]

    async def go():
        batcher = Batcher(counted, max_batch=4, timeout_ms=200)
        return await asyncio.gather(*(batcher({"input_image": x}) for x in images))

    outputs = asyncio.run(go())
    assert sorted(calls) == [4, 4]  # 8 concurrent requests, 2 model calls
    for x, out in zip(images, outputs):
        np.testing.assert_allclose(out["output_image"], signature(input_image=x)["output_image"], atol=1e-5)


def test_serves_a_training_work_dir(tiny_data, trained_workdir):
    # The session's 32 px work dir (tests/conftest.py); serving only reads it.
    app = create_app(load_served_model(trained_workdir), name="mine")
    meta = _request(app, "GET", "/v1/models/mine/metadata").json()
    assert "serving_stochastic" in meta["metadata"]["signature_def"]["signature_def"]
    body = {"signature_name": "translate_image", "instances": [np.zeros((32, 32, 3), int).tolist()]}
    assert _request(app, "POST", "/v1/models/mine:predict", json=body).status_code == 200
    with pytest.raises(Exception, match="nothing to serve"):
        load_served_model(tiny_data)


def test_the_readme_commands_against_a_real_server(tmp_path):
    # The README's serving block, run as written (port changed), against `pix2pix-tf serve`.
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- serving example -->")[1].split("```bash")[1].split("```")[0]
    commands = [line for line in block.strip().splitlines() if line.startswith("curl")]
    assert len(commands) == 3
    (tmp_path / "labels.png").write_bytes(_png(_label_map()))
    server = LiveServer()
    try:
        outputs = [
            subprocess.run(
                ["bash", "-c", c.replace("8501", str(server.port))], cwd=tmp_path, capture_output=True, timeout=60
            )
            for c in commands
        ]
        assert all(o.returncode == 0 for o in outputs), [o.stderr for o in outputs]
        assert json.loads(outputs[0].stdout)["model_version_status"][0]["state"] == "AVAILABLE"
        png = base64.b64decode(json.loads(outputs[1].stdout)["predictions"][0]["b64"])
        assert Image.open(io.BytesIO(png)).size == (64, 64)
        assert Image.open(tmp_path / "photo.png").size == (64, 64)
    finally:
        assert server.stop() == 0  # SIGTERM, as from a process manager: a clean exit


def test_ctrl_c_stops_the_server_cleanly():
    server = LiveServer()
    server.process.send_signal(signal.SIGINT)
    _, err = server.process.communicate(timeout=60)
    # Ctrl-C is how a server is normally stopped: a graceful shutdown, status 0.
    assert server.process.returncode == 0 and "Traceback" not in err, err[-2000:]


def test_binding_beyond_loopback_warns(monkeypatch, capsys):
    import pix2pix_tf.serve as serve_mod

    ran = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: ran.append(kwargs))
    serve_mod.serve(None, host="0.0.0.0", port=1)
    # uvicorn also gets the connection settings (tests/test_serve_hostile.py); these three as before.
    assert [{k: r[k] for k in ("host", "port", "log_level")} for r in ran] == [
        {"host": "0.0.0.0", "port": 1, "log_level": "warning"}
    ]
    assert "warning: binding 0.0.0.0: the model is reachable from other machines" in capsys.readouterr().err
    serve_mod.serve(None, host="127.0.0.1", port=1)
    assert "warning" not in capsys.readouterr().err


def test_load_benchmark_runs_bounded_and_reports_no_errors(tmp_path):
    # The script behind the README's throughput figures, at a small size.
    script = REPO / "benchmarks/serve_load.py"
    argv = [sys.executable, str(script), "--clients", "4", "--requests", "12", "--repeats", "2"]
    argv += ["--out", str(tmp_path / "r.json")]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["clients"] == 4 and len(report["results"]) == 2
    for row in report["results"].values():
        assert row["requests"] == 24 and row["errors"] == 0
        assert row["p99_ms"]["median"] >= row["p50_ms"]["median"] > 0
        assert row["requests_per_s"]["min"] <= row["requests_per_s"]["median"] <= row["requests_per_s"]["max"]


class _Recorder:
    """Wraps a signature's function: records each call's batch size and how many ran at once."""

    def __init__(self, function, seconds: float):
        self.function, self.seconds = function, seconds
        self.batches, self.active, self.most_at_once = [], 0, 0
        self.lock = threading.Lock()

    def __call__(self, **tensors):
        with self.lock:
            self.active += 1
            self.most_at_once = max(self.most_at_once, self.active)
            self.batches.append(len(next(iter(tensors.values()))))
        try:
            time.sleep(self.seconds)
            return self.function(**tensors)
        finally:
            with self.lock:
                self.active -= 1


def _with_recorder(served, signature: str, seconds: float):
    import dataclasses

    recorder = _Recorder(served.signatures[signature].function, seconds)
    signatures = dict(served.signatures)
    signatures[signature] = dataclasses.replace(signatures[signature], function=recorder)
    return dataclasses.replace(served, signatures=signatures), recorder


def _concurrently(app, requests):
    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=120) as client:
            return await asyncio.gather(*(client.request(*r[:2], **r[2]) for r in requests))

    return asyncio.run(go())


def test_native_size_predict_takes_the_same_one_at_a_time_guard_and_is_never_batched(served):
    recorded, recorder = _with_recorder(served, "serving_any_size", seconds=0.2)
    app = create_app(recorded, max_batch=8, batch_timeout_ms=300)
    image = (np.random.default_rng(0).random((1, 64, 128, 3)) * 2 - 1).round(3).tolist()
    predict = ("POST", f"{URL}:predict", {"json": {"signature_name": "serving_any_size", "instances": image}})
    upload = ("POST", "/translate?native_size=true", {"content": _png(_label_map()), "headers": PNG})
    replies = _concurrently(app, [predict, upload, predict, upload])
    assert [r.status_code for r in replies] == [200] * 4, [r.text for r in replies]
    assert recorder.batches == [1, 1, 1, 1] and recorder.most_at_once == 1


def test_native_requests_beyond_the_queue_get_503_without_being_decoded(served, monkeypatch):
    import pix2pix_tf.serve.app as app_module

    decoded = []
    monkeypatch.setattr(app_module, "decode", lambda *a, **k: decoded.append(1) or decode(*a, **k))
    recorded, recorder = _with_recorder(served, "serving_any_size", seconds=0.5)
    app = create_app(recorded, limits=Limits(max_native_queue=2))
    upload = ("POST", "/translate?native_size=true", {"content": _png(_label_map()), "headers": PNG})
    replies = _concurrently(app, [upload] * 6)
    codes = sorted(r.status_code for r in replies)
    assert codes == [200, 200, 200, 503, 503, 503], [r.text for r in replies]  # one running, two waiting
    assert len(recorder.batches) == 3 and len(decoded) == 3  # the refused were never decoded
    busy = next(r for r in replies if r.status_code == 503).json()["error"]
    assert busy.startswith("the server is busy: 2 native-size requests are waiting already")


def test_a_gif_frame_bomb_is_translated_at_its_first_frames_size_on_every_route(served):
    # A 64 x 64 screen and a second frame of 4096 x 4096: TensorFlow's decoder sized the whole
    # GIF by its largest frame, which slipped past the header's pixel cap.
    bomb = gif_frame_bomb(4096, first=Image.fromarray(_label_map()))
    assert len(bomb) < 200_000
    recorded, recorder = _with_recorder(served, "serving_any_size", seconds=0)
    app = create_app(recorded, limits=Limits(max_pixels=128 * 128, max_request_pixels=128 * 128))
    body = {"signature_name": "translate_bytes", "instances": [{"b64": _b64(bomb)}] * 4}
    replies = _concurrently(
        app,
        [
            ("POST", "/translate", {"content": bomb, "headers": {"content-type": "image/gif"}}),
            ("POST", "/translate?native_size=true", {"content": bomb, "headers": {"content-type": "image/gif"}}),
            ("POST", f"{URL}:predict", {"json": body}),
        ],
    )
    assert [r.status_code for r in replies] == [200, 200, 200], [r.text for r in replies]
    outputs = [replies[0].content, replies[1].content] + [
        base64.b64decode(p["b64"]) for p in replies[2].json()["predictions"]
    ]
    assert [Image.open(io.BytesIO(png)).size for png in outputs] == [(64, 64)] * 6
    assert recorder.batches == [1]  # the native run: on the first frame only
