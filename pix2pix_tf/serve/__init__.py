"""`pix2pix-tf serve`: TensorFlow Serving's REST API and a drawing page for a trained generator."""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from pix2pix_tf.config import Connections
from pix2pix_tf.serve.app import create_app
from pix2pix_tf.serve.browser import LOOPBACK_HOSTS
from pix2pix_tf.serve.connections import fit_file_limit, uvicorn_options
from pix2pix_tf.serve.model import ServedModel, load_served_model
from pix2pix_tf.serve.rest import Limits
from pix2pix_tf.webapp import runtime


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_one_address(host: str) -> bool:
    try:
        return not ipaddress.ip_address(host).is_unspecified  # 0.0.0.0 and :: are every address
    except ValueError:
        return False


def serve(
    model: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8501,
    name: str = "pix2pix",
    limits: Limits | None = None,
    max_batch: int = 1,
    batch_timeout_ms: float = 5.0,
    page_tools: str = "auto",
    connections: Connections | None = None,
    allowed_hosts: Iterable[str] = (),
) -> None:
    """Serves a model until Ctrl-C or SIGTERM (uvicorn shuts down cleanly on both).

    Args:
        model: an export dir, a SavedModel dir or a training work dir; None serves
            the shipped demo model.
        host: address to bind; anything but loopback exposes the model to the network.
        port: TCP port (8501 is TensorFlow Serving's REST port).
        name: the model name in `/v1/models/NAME`.
        limits: body, pixel and instance caps.
        max_batch: rows per model call when batching concurrent requests (1: off).
        batch_timeout_ms: how long a request waits for others to batch with.
        page_tools: the page's drawing tools (see `create_app`).
        connections: connection limit and timeouts (default `Connections()`); the limit
            is lowered if the file-descriptor limit cannot hold it.
        allowed_hosts: `Host` names answered besides the loopback names (and the
            address `host` binds, if it is one address).
    """
    import uvicorn

    served = load_served_model(model)
    connections, fitted = fit_file_limit(connections or Connections())
    allowed_hosts = list(allowed_hosts)
    if not _is_loopback(host):
        if _is_one_address(host):  # what clients put in Host when they use the address
            allowed_hosts.append(host)
        print(
            f"warning: binding {host}: the model is reachable from other machines, without authentication. "
            f"Host names answered: {', '.join([*LOOPBACK_HOSTS, *allowed_hosts])}; add the names clients "
            "use with --allowed-host NAME (repeatable). A public deployment belongs behind a reverse proxy "
            "(see the README's Serving section)",
            file=sys.stderr,
        )
    app = create_app(
        served,
        name=name,
        limits=limits,
        max_batch=max_batch,
        batch_timeout_ms=batch_timeout_ms,
        page_tools=page_tools,
        connections=connections,
        allowed_hosts=allowed_hosts,
        browser_runtime=runtime.cached(),  # never fetched here: a server starts without the network
    )
    print(
        f"serving {served.source} as {name!r}: page http://{host}:{port}/ , REST http://{host}:{port}/v1/models/{name}",
        flush=True,
    )
    print(f"connections: {fitted}", flush=True)
    web = app.state.app.web
    where = (
        "on the server or in the browser" if web.in_browser else f"on the server; not in the browser: {web.unavailable}"
    )
    print(f"page: runs the model {where}", flush=True)
    # uvicorn shuts down gracefully on Ctrl-C and SIGTERM; after a SIGTERM it re-raises
    # the signal to the handler it found, which would kill the process: make that an
    # exit with status 0, as after Ctrl-C (tested for both).
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", **uvicorn_options(connections))
    finally:
        signal.signal(signal.SIGTERM, previous)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running(model: str | Path | ServedModel | None = None, name: str = "pix2pix", **options) -> Iterator[str]:
    """Serves `model` on a free 127.0.0.1 port in a background thread while the block runs.

    For notebooks and scripts that want to talk to a real server; yields its base URL.
    `model` is what `load_served_model` takes, or a model it returned. `options` are
    `create_app`'s (limits, max_batch, batch_timeout_ms, connections, ...).
    """
    import uvicorn

    served = model if isinstance(model, ServedModel) else load_served_model(model)
    app = create_app(served, name=name, **{"browser_runtime": runtime.cached(), **options})
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        **uvicorn_options(options.get("connections") or Connections()),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server on 127.0.0.1:{port} did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _stopped(signum, frame):
    print("stopped (SIGTERM)", file=sys.stderr)
    raise SystemExit(0)


__all__ = [
    "Connections",
    "Limits",
    "ServedModel",
    "create_app",
    "free_port",
    "load_served_model",
    "running",
    "serve",
]
