"""Connection hygiene: how many sockets the server holds, and how long each may idle or dribble.

uvicorn's own settings do most of it (`limit_concurrency`, `timeout_keep_alive`,
`backlog`; h11 caps a request's line and headers at 16 KB). What they leave open is
added here, in a subclass of uvicorn's h11 protocol:

- uvicorn counts connections but accepts every one, and answers 503 only once a
  request arrives; idle sockets hold their file descriptors until the process runs
  out, and asyncio then logs "socket.accept() out of system resource" in a tight loop.
  Here a connection over the limit is answered 503 and closed as it is accepted, and
  the limit is kept below the file-descriptor limit (`fit_file_limit`).
- uvicorn's keep-alive timer starts after a response: a new connection that never
  sends a byte, or sends its headers a byte at a time, is held forever. Here the
  timer also starts on connect, and the headers must arrive within `header_timeout`.
- The body's deadline (`body_timeout`) is the app's: it answers 408 (app.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import resource
import time

from pix2pix_tf.config import Connections
from pix2pix_tf.serve.browser import API_POLICY, HEADERS

log = logging.getLogger(__name__)


# File descriptors the process keeps for itself beyond those open at start (TensorFlow's
# threads and files, the listening socket, log files).
FD_MARGIN = 64


def fit_file_limit(connections: Connections) -> tuple[Connections, str]:
    """Raises the soft RLIMIT_NOFILE to the hard limit; lowers limit_concurrency and backlog below it if needed.

    asyncio accepts up to `backlog` connections in one pass of its loop before the
    protocol can close any, and the next pass may come before those are closed: with
    `limit_concurrency` + 2 x `backlog` + the descriptors already open + `FD_MARGIN`
    under the soft limit, accept() never fails for want of descriptors.

    Returns:
        The settings that fit, and a line saying what was done, for the start-up log.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    raised = soft
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 2**20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            raised = target
        except (ValueError, OSError):  # a hard limit above the kernel's nr_open
            pass
    try:
        open_now = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_now = FD_MARGIN
    room = raised - open_now - FD_MARGIN
    limit, backlog = connections.limit_concurrency, connections.backlog
    if limit + 2 * backlog > room:
        backlog = max(1, min(backlog, room // 4))
        limit = max(1, min(limit, room - 2 * backlog))
    fitted = dataclasses.replace(connections, limit_concurrency=limit, backlog=backlog)
    summary = f"at most {limit} connections, backlog {backlog}"
    lowered = [
        f"--{name.replace('_', '-')} {getattr(connections, name)}"
        for name in ("limit_concurrency", "backlog")
        if getattr(connections, name) != getattr(fitted, name)
    ]
    if lowered:
        summary += f" ({' and '.join(lowered)} lowered to fit)"
    files = f"file descriptors: soft limit {raised}" + (f", raised from {soft}" if raised != soft else "")
    line = (
        f"{summary}; {files}, {open_now} open; idle {fitted.timeout_keep_alive:g} s, "
        f"headers {fitted.header_timeout:g} s, body {fitted.body_timeout:g} s"
    )
    return fitted, line


def uvicorn_options(connections: Connections) -> dict:
    """The keyword arguments of `uvicorn.run` / `uvicorn.Config` that apply `connections`."""
    return {
        "http": protocol(connections),
        # One more than ours: the protocol closes the connection over the limit as it is
        # accepted, so uvicorn's own 503 (a text body, per request) is only a backstop.
        "limit_concurrency": connections.limit_concurrency + 1,
        "backlog": connections.backlog,
        "timeout_keep_alive": connections.timeout_keep_alive,
    }


def _busy_reply(limit: int) -> bytes:
    body = json.dumps({"error": f"too many connections (the limit is {limit}); try again later"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [*HEADERS, (b"content-security-policy", API_POLICY), (b"connection", b"close")]
    head = b"HTTP/1.1 503 Service Unavailable\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in headers)
    return head + b"\r\n" + body


def protocol(connections: Connections) -> type:
    """uvicorn's h11 protocol with the connection limit applied at accept and a header deadline."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    busy = _busy_reply(connections.limit_concurrency)
    warned = [-float("inf")]

    class GuardedH11Protocol(H11Protocol):
        _header_deadline = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            if len(self.connections) > connections.limit_concurrency:
                # Closed at once, so sockets never outnumber the descriptors (fit_file_limit).
                transport.write(busy)
                transport.close()
                if time.monotonic() - warned[0] > 60:  # a line a minute, not one per connection
                    warned[0] = time.monotonic()
                    log.warning("%d connections open: refusing more (--limit-concurrency)", len(self.connections) - 1)
                return
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
            self._arm_header_deadline()

        def on_response_complete(self) -> None:
            self._arm_header_deadline()  # before the pipelined request super() may start
            super().on_response_complete()

        def connection_lost(self, exc) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
            super().connection_lost(exc)

        def _arm_header_deadline(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
            self._header_deadline = self.loop.call_later(
                connections.header_timeout, self._header_deadline_passed, self.cycle
            )

        def _header_deadline_passed(self, cycle) -> None:
            # A new request's headers make a new cycle: the same one means none arrived.
            if self.cycle is cycle and not self.transport.is_closing():
                self.transport.close()

    return GuardedH11Protocol
