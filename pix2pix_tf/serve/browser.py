"""What keeps a browser from being turned against the server: headers, trusted hosts, a CSRF rule.

A page on another site can make a visitor's browser send requests to a server on
127.0.0.1 or the LAN. It cannot read the replies unless the server lets it, but:

- with DNS rebinding, its own host name resolves to the server, and the replies are
  same-origin: the trusted-host check refuses any `Host` but the names the server
  answers to (loopback names by default);
- a cross-site form or `fetch(..., {mode: "no-cors"})` may POST a body as
  `text/plain`, `application/x-www-form-urlencoded`, `multipart/form-data` or with no
  type: `/translate` refuses those unless the request also carries a header such a
  request cannot set (`X-Requested-With`), so another site cannot run the model;
- the reply headers forbid framing, MIME sniffing and, on the page, any script or
  style but its own (a nonce per reply). When the page offers "in this browser", it
  may also compile WebAssembly and start workers from this server (LiteRT.js), and it
  is cross-origin isolated (COOP and COEP), which the threaded wasm needs.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
PROOF_HEADER = "x-requested-with"
# What a cross-site form can send (the CORS-safelisted types); no type at all is what a
# no-cors fetch of an untyped Blob sends.
FORM_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "")

HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
# For everything but the page: JSON and PNG replies run nothing and embed nothing.
API_POLICY = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


# What lets a page use SharedArrayBuffer (the threaded wasm): no window of another origin
# shares its process, and everything it embeds is same-origin or says it may be embedded.
ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}


def page_policy(nonce: str, in_browser: bool = False) -> str:
    """The page's Content-Security-Policy: its own scripts and style (by nonce, and the modules
    they import), images it makes itself (data: and blob: URLs), and requests to this server only.

    With `in_browser`, also what LiteRT.js needs from this server: the wasm loader it adds as a
    <script> and the workers of the threaded build ('self': worker-src falls back to script-src),
    and compiling WebAssembly ('wasm-unsafe-eval', not 'unsafe-eval').
    """
    scripts = f"'nonce-{nonce}' 'self' 'wasm-unsafe-eval'" if in_browser else f"'nonce-{nonce}'"
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'nonce-{nonce}'; "
        "img-src 'self' data: blob:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def with_nonce(html: str) -> tuple[str, str]:
    """The page with a fresh nonce on its <script> and <style> tags, and that nonce."""
    nonce = secrets.token_urlsafe(18)
    return re.sub(r"<(script|style)(?=[\s>])", rf'<\1 nonce="{nonce}"', html), nonce


def host_name(host: str) -> str | None:
    """The name of a `Host` header without its port, lower case; None if it is malformed."""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 address: [::1]:8501
        end = host.find("]") + 1
        name, port = (host[:end], host[end:]) if end else ("", "")
    else:
        name, colon, port = host.partition(":")
        port = colon + port
    if port and not (port.startswith(":") and port[1:].isdigit()):
        return None
    return name.rstrip(".") or None  # "localhost." is localhost


def allowed_names(extra: Iterable[str] = ()) -> frozenset[str]:
    """Loopback names and `extra` (names or addresses, without ports; "*" allows any)."""
    names = set(LOOPBACK_HOSTS)
    for host in extra:
        host = host.strip().lower()
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # a bare IPv6 address, as a Host header writes it
        names.add(host)
    return frozenset(names)


def cross_site_form(content_type: str, headers) -> str | None:
    """Why a POST of this type could have come from another site's form, or None if it could not."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind not in FORM_TYPES or headers.get(PROOF_HEADER):
        return None
    sent = f"Content-Type {kind}" if kind else "no Content-Type"
    return (
        f"refused an upload with {sent}: another site's form could send that. Send the image with its "
        "own type (-H 'Content-Type: image/png'), or add the header X-Requested-With (any value) "
        "to a multipart form"
    )


class BrowserSafety:
    """ASGI middleware: refuses unknown `Host` headers (400) and adds the security headers to every reply."""

    def __init__(self, app, allowed: frozenset[str]):
        self.app, self.allowed = app, allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [h for h in HEADERS if h[0] not in present]
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", API_POLICY))
                message = {**message, "headers": headers}
            await send(message)

        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        name = host_name(host)
        if "*" not in self.allowed and name not in self.allowed:
            shown = host if len(host) <= 80 else host[:77] + "..."
            body = json.dumps(
                {
                    "error": f"Host {shown!r} is not one this server answers to; "
                    "start it with --allowed-host NAME to add the name clients use"
                }
            ).encode()
            await send_with_headers(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send_with_headers({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send_with_headers)
