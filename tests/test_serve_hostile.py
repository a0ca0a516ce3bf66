"""The server under hostile traffic (issue 22): slow and idle clients, large JSON, hang-ups, browsers.

Servers bind 127.0.0.1 only; every loop is bounded in count and time.
"""

import asyncio
import base64
import dataclasses
import io
import json
import logging
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest
from PIL import Image

from pix2pix_tf.config import Connections
from pix2pix_tf.serve import Limits, create_app, free_port, running
from pix2pix_tf.serve.batching import Batcher, ClientGone, client_gone
from pix2pix_tf.signatures import NATIVE_SIGNATURE

URL = "/v1/models/pix2pix"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def served(shipped_served):
    return shipped_served  # the shipped demo model, loaded once a session (tests/conftest.py)


def _png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


LABELS = np.asarray(Image.open(REPO / "pix2pix_tf/webapp/static/examples/facade_1.png"))
WIDE_PNG = _png(np.asarray(Image.fromarray(LABELS).resize((150, 90))))  # 128 x 192 once padded


def _request(app, method, url, host="localhost", **kwargs):
    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            headers = {**kwargs.pop("headers", {}), "host": host}  # as sent, malformed ones too
            return await client.request(method, url, headers=headers, **kwargs)

    return asyncio.run(go())


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def _upload(path: str, body: bytes, length: int | None = None) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    )
    return head.encode() + body


def _read_all(sock: socket.socket, seconds: float) -> bytes:
    """What the server sends until it closes the connection or `seconds` pass."""
    data, deadline = b"", time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return False
        try:
            if not sock.recv(65536):
                return True
        except ConnectionResetError:
            return True
    return False


# --- 3. connection hygiene -------------------------------------------------------------
def test_a_body_sent_a_byte_at_a_time_gets_408_at_the_deadline(served):
    with running(served, connections=Connections(body_timeout=1.0)) as url:
        sock = _connect(url)
        start = time.monotonic()
        sock.sendall(_upload("/translate", b"", length=1000))
        reply = b""
        for _ in range(40):  # one byte per 100 ms: 4 s at most, the deadline is 1 s
            sock.sendall(b"x")
            reply += _read_all(sock, 0.1)
            if reply:
                break
        elapsed = time.monotonic() - start
        reply += _read_all(sock, 2)
        sock.close()
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"did not arrive within 1 s" in reply and b"connection: close" in reply.lower()
    assert 0.9 < elapsed < 2.5


def test_connections_over_the_limit_are_closed_at_once_and_idle_ones_time_out(served):
    connections = Connections(limit_concurrency=4, timeout_keep_alive=0.5, header_timeout=1.0)
    with running(served, connections=connections) as url:
        idle = [_connect(url) for _ in range(4)]
        time.sleep(0.2)
        over = [_connect(url) for _ in range(4)]
        replies = [_read_all(sock, 1.0) for sock in over]
        # Answered and closed as accepted, so sockets never outnumber the descriptors.
        assert all(r == b"" or r.startswith(b"HTTP/1.1 503") for r in replies), replies
        assert any(b"too many connections" in r for r in replies)
        busy = next(r for r in replies if r).lower()
        assert b"content-security-policy: default-src 'none'" in busy and b"x-frame-options: deny" in busy
        # A new connection that sends nothing is closed after timeout_keep_alive.
        assert all(_closed_within(sock, 2.0) for sock in idle)
        # Headers a byte at a time are cut off at header_timeout, data or not.
        slow, start = _connect(url), time.monotonic()
        slow.sendall(b"GET " + URL.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        closed = False
        for _ in range(30):  # 3 s at most
            try:
                slow.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if _closed_within(slow, 0.1):
                closed = True
                break
        assert closed and time.monotonic() - start < 2.5
        assert httpx.get(url + URL, timeout=5).status_code == 200  # the limit is free again
        for sock in idle + over + [slow]:
            sock.close()


# A server with the connection guard and a trivial app, in its own process so that its
# file-descriptor limit can be lowered. connections.py is loaded from its file: the
# serve package would import TensorFlow, seconds of start-up this test does not need.
_FD_CHILD = """
import importlib.util, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[3]), int(sys.argv[3])))
import uvicorn
from pix2pix_tf.config import Connections
spec = importlib.util.spec_from_file_location("connections", sys.argv[1])
connections = importlib.util.module_from_spec(spec)
spec.loader.exec_module(connections)
fitted, line = connections.fit_file_limit(Connections())
print(line, flush=True)

async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", lifespan="off",
            **connections.uvicorn_options(fitted))
"""


def test_more_sockets_than_file_descriptors_do_not_flood_the_log(tmp_path):
    limit = 100  # descriptors: the default limit_concurrency (64) + the margin does not fit
    port = free_port()
    err = (tmp_path / "stderr").open("w+")
    child = subprocess.Popen(
        [sys.executable, "-c", _FD_CHILD, str(REPO / "pix2pix_tf/serve/connections.py"), str(port), str(limit)],
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
    )
    sockets = []
    try:
        line = child.stdout.readline()
        assert "(--limit-concurrency 64 and --backlog 256 lowered to fit)" in line, line
        assert f"soft limit {limit}" in line, line
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text == "ok":
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        deadline = time.monotonic() + 15
        while len(sockets) < limit + 20 and time.monotonic() < deadline:  # more than the server has descriptors
            try:
                sockets.append(socket.create_connection(("127.0.0.1", port), timeout=3))
            except OSError:  # the kernel's short queue was full for a moment: try again
                pass
            time.sleep(0.003)  # faster, and the kernel's queue of 8 overflows: SYNs are retried after 1 s
        assert len(sockets) == limit + 20
        time.sleep(1.5)
        assert child.poll() is None
        for sock in sockets:
            sock.close()
        sockets.clear()
        time.sleep(0.3)
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text == "ok"
    finally:
        for sock in sockets:
            sock.close()
        child.terminate()
        child.wait(timeout=30)
    err.seek(0)
    log = err.read()
    assert "out of system resource" not in log and len(log) < 2000, log[:2000]


def test_serve_raises_the_file_limit_and_passes_the_settings_to_uvicorn(monkeypatch, capsys):
    import pix2pix_tf.serve as serve_mod

    ran = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: ran.append(kwargs))
    serve_mod.serve(None, port=1, connections=Connections(limit_concurrency=10, backlog=7, timeout_keep_alive=3))
    options = ran[0]
    assert (options["limit_concurrency"], options["backlog"], options["timeout_keep_alive"]) == (11, 7, 3)
    assert options["http"].__name__ == "GuardedH11Protocol"
    assert "connections: at most 10 connections, backlog 7; file descriptors: soft limit" in capsys.readouterr().out


# --- 4. large JSON ------------------------------------------------------------------------
def test_json_with_more_values_than_the_limits_need_is_refused_before_parsing(served):
    app = create_app(served)  # default limits: 32 MB bodies, 64 instances
    hostile = b'{"instances": [' + b"[]," * 2_000_000 + b"[]]}"  # 6 MB, 2M lists
    start = time.perf_counter()
    json.loads(hostile)  # what parsing it costs: the stall every other request would see
    baseline = time.perf_counter() - start
    start = time.perf_counter()
    reply = _request(app, "POST", f"{URL}:predict", content=hostile)
    elapsed = time.perf_counter() - start
    assert reply.status_code == 413 and "JSON values" in reply.json()["error"], reply.text[:300]
    assert elapsed < baseline / 3, (elapsed, baseline)


def test_the_largest_request_within_the_limits_passes_the_value_cap(served):
    # 8 images of 64 x 64 x 3, as floats: 8 x (12,288 numbers + 4,096 pixel lists + 65 row
    # and image lists) = 131,592 values, under the cap of 8 x 4,096 x 5 + 72 = 163,912.
    app = create_app(served, limits=Limits(max_instances=8))
    body = orjson.dumps({"instances": np.full((8, 64, 64, 3), -0.123456789).tolist()})
    reply = _request(app, "POST", f"{URL}:predict", content=body)
    assert reply.status_code == 200 and np.array(reply.json()["predictions"]).shape == (8, 64, 64, 3)


# --- 5. work for a client that has gone ------------------------------------------------
def test_native_uploads_whose_clients_hung_up_do_not_run_the_model(served):
    calls, started, gate = [], threading.Event(), threading.Event()
    signature = served.signatures[NATIVE_SIGNATURE]

    def counted(**inputs):
        calls.append(inputs["input_image"].shape)
        started.set()
        gate.wait(timeout=30)  # the first call holds the native slot until the hang-ups are in
        return signature.function(**inputs)

    slow = dataclasses.replace(
        served, signatures={**served.signatures, NATIVE_SIGNATURE: dataclasses.replace(signature, function=counted)}
    )
    path = "/translate?native_size=true"
    with running(slow) as url:
        first = _connect(url)
        first.sendall(_upload(path, WIDE_PNG))
        assert started.wait(timeout=30)
        for _ in range(3):  # queued behind the first, then the client hangs up
            sock = _connect(url)
            sock.sendall(_upload(path, WIDE_PNG))
            time.sleep(0.3)  # the server has read the body and waits for the slot
            sock.close()
        time.sleep(0.3)
        gate.set()
        last = _connect(url)  # queued behind the three: when it is answered, they are done
        last.sendall(_upload(path, WIDE_PNG))
        replies = [_read_all(sock, 30) for sock in (last, first)]
        first.close()
        last.close()
    assert all(r.startswith(b"HTTP/1.1 200") for r in replies), [r[:100] for r in replies]
    assert len(calls) == 2  # the first and the last; none for the three that hung up


def test_the_batcher_leaves_out_requests_whose_client_hung_up():
    rows = []

    def model(x):
        rows.append(len(x))
        return {"y": x * 2}

    async def request(batcher, value, gone):
        async def check():
            return gone

        client_gone.set(check)
        return await batcher({"x": np.full((1, 2), value)})

    async def go():
        batcher = Batcher(model, max_batch=4, timeout_ms=100)
        return await asyncio.gather(*(request(batcher, v, v % 2 == 1) for v in range(4)), return_exceptions=True)

    results = asyncio.run(go())
    assert rows == [2]  # one model call, for the two whose clients are there
    assert [isinstance(r, ClientGone) for r in results] == [False, True, False, True]
    np.testing.assert_array_equal(results[2]["y"], [[4, 4]])


# --- 6. no traceback for a disconnect -------------------------------------------------------
class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(self.format(record))


def test_a_disconnect_mid_body_logs_at_most_one_short_line(served):
    records = _Records()
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "uvicorn", "pix2pix_tf")]
    levels = [logger.level for logger in loggers]
    with running(served) as url:
        for logger in loggers:
            logger.addHandler(records)
        logging.getLogger("pix2pix_tf").setLevel(logging.INFO)  # our line is at info: show it here
        try:
            for path in ("/translate", f"{URL}:predict"):
                sock = _connect(url)
                sock.sendall(_upload(path, b"x" * 5000, length=10_000))
                time.sleep(0.2)
                sock.close()
            time.sleep(0.5)
            assert httpx.get(url + URL, timeout=5).status_code == 200
        finally:
            for logger, level in zip(loggers, levels):
                logger.removeHandler(records)
                logger.setLevel(level)
    assert not any("Exception in ASGI application" in r or "Traceback" in r for r in records.records), records.records
    assert len(records.records) <= 2 and all(len(r) < 200 and "\n" not in r for r in records.records)


# --- 7. browser-side --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app(served):
    return create_app(served, allowed_hosts=["box.lan"])


def test_security_headers_on_every_reply(app):
    page = _request(app, "GET", "/")
    policy = page.headers["content-security-policy"]
    nonce = policy.split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in page.text and f'<style nonce="{nonce}">' in page.text
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy and "frame-ancestors 'none'" in policy
    assert _request(app, "GET", "/").headers["content-security-policy"] != policy  # a nonce per reply
    replies = [
        page,
        _request(app, "GET", URL),
        _request(app, "POST", f"{URL}:predict", content=b"{"),
        _request(app, "GET", "/nowhere"),
        _request(app, "DELETE", "/"),
        _request(app, "GET", URL, host="evil.example"),
    ]
    for reply in replies:
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["x-frame-options"] == "DENY"
        assert reply.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]


def test_only_trusted_host_names_are_answered(app):
    for host in ("127.0.0.1:8501", "localhost", "LOCALHOST:1", "[::1]:8501", "box.lan:8501"):
        assert _request(app, "GET", URL, host=host).status_code == 200, host
    for host in ("evil.example", "127.0.0.1.evil.example:8501", "box.lan.evil.example", "[::1"):
        reply = _request(app, "GET", URL, host=host)
        assert reply.status_code == 400 and "--allowed-host" in reply.json()["error"], host
    assert _request(create_app(app.state.app.served, allowed_hosts=["*"]), "GET", URL, host="any").status_code == 200


def test_no_redirect_is_built_from_the_host_header(app):
    reply = _request(app, "GET", "/translate/", follow_redirects=False)
    assert reply.status_code == 404 and "location" not in reply.headers
    assert _request(app, "GET", "/translate/", host="evil.example").status_code == 400


def test_translate_refuses_what_a_cross_site_form_can_send(app):
    png = _png(LABELS)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "text/plain; charset=utf-8", None):
        headers = {"content-type": content_type} if content_type else {}
        reply = _request(app, "POST", "/translate", content=png, headers=headers)
        assert reply.status_code == 415 and "X-Requested-With" in reply.json()["error"], content_type
    form = {"file": ("x.png", png, "image/png")}
    assert _request(app, "POST", "/translate", files=form).status_code == 415
    assert _request(app, "POST", "/translate", files=form, headers={"x-requested-with": "x"}).status_code == 200
    assert _request(app, "POST", "/translate", content=png, headers={"content-type": "image/png"}).status_code == 200


def test_error_messages_carry_no_reprs_and_no_unbounded_echoes(app):
    keys = {f"key{i}": 0 for i in range(100_000)}
    reply = _request(app, "POST", f"{URL}:predict", json={"instances": [[0]], **keys})
    assert reply.status_code == 400 and "unknown request keys" in reply.json()["error"]
    assert len(reply.content) < 1000
    junk = {"content-type": "image/png"}
    for reply in (
        _request(app, "POST", "/translate", content=b"text, not pixels", headers=junk),
        _request(
            app,
            "POST",
            f"{URL}:predict",
            json={
                "signature_name": "translate_bytes",
                "instances": [{"b64": base64.b64encode(b"text, not pixels").decode()}],
            },
        ),
    ):
        assert reply.status_code == 400 and " object at 0x" not in reply.text, reply.text
