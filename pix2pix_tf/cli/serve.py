"""`pix2pix-tf serve`: the REST server and the drawing page."""

from __future__ import annotations

import argparse

from pix2pix_tf.cli.options import section_flags
from pix2pix_tf.config import Connections


def _serve(args):
    from pix2pix_tf.serve import Limits, serve

    limits = Limits(
        max_body_bytes=int(args.max_body_mb * 2**20),
        max_pixels=args.max_pixels,
        max_instances=args.max_instances,
        max_request_pixels=args.max_request_pixels,
        max_native_queue=args.max_native_queue,
    )
    serve(
        args.model,
        host=args.host,
        port=args.port,
        name=args.name,
        limits=limits,
        max_batch=args.max_batch,
        batch_timeout_ms=args.batch_timeout_ms,
        page_tools=args.page_tools,
        connections=Connections(**{flag.field.name: getattr(args, flag.dest) for flag in CONNECTION_FLAGS}),
        allowed_hosts=args.allowed_host,
    )


CONNECTION_FLAGS = section_flags(Connections)


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0; got {text}")
        return value

    return parse


def _name(text):
    from pix2pix_tf.serve.app import check_name

    try:
        return check_name(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _milliseconds(text):
    value = float(text)
    if not 0 <= value < 60_000:
        raise argparse.ArgumentTypeError(f"must be in [0, 60000); got {text}")
    return value


def add_commands(sub):
    p = sub.add_parser(
        "serve",
        help="serve a model: TensorFlow Serving's REST API and a drawing page",
        description="Serves MODEL with TensorFlow Serving's REST predict API under /v1/models/NAME, "
        "an upload endpoint (POST /translate) and a drawing page at /. Ctrl-C stops it.",
    )
    p.add_argument("model", nargs="?", help="export dir, SavedModel dir or work dir (default: the shipped demo model)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8501, help="TCP port (default 8501, TF Serving's REST port)")
    p.add_argument("--name", type=_name, default="pix2pix", help="model name in /v1/models/NAME (default pix2pix)")
    p.add_argument("--max-batch", type=_positive(int), default=1, help="batch concurrent requests up to N rows")
    p.add_argument(
        "--batch-timeout-ms", type=_milliseconds, default=5.0, help="wait for a batch to fill, 0-60000 (default 5)"
    )
    p.add_argument("--max-body-mb", type=_positive(float), default=32.0, help="request body cap (default 32)")
    p.add_argument("--max-pixels", type=_positive(int), default=4096 * 4096, help="pixels per image cap")
    p.add_argument(
        "--max-request-pixels", type=_positive(int), default=4096 * 4096, help="pixels per request, all images"
    )
    p.add_argument("--max-instances", type=_positive(int), default=64, help="images per request cap")
    p.add_argument(
        "--max-native-queue",
        type=_positive(int),
        default=4,
        help="native-size requests that may wait for the one native slot; more get 503 (default 4)",
    )
    for flag in CONNECTION_FLAGS:
        # Refused while parsing, as the other limits are; never None, so Connections gets every field.
        flag.add_to(p, type=_positive(flag.kind), default=flag.field.default)
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name to answer besides 127.0.0.1, localhost and [::1] (repeatable; '*': any, "
        "only behind a proxy that checks Host)",
    )
    p.add_argument(
        "--page-tools",
        choices=("auto", "facade_labels", "pencil"),
        default="auto",
        help="the page's drawing tools (auto: the facade palette for an RGB B->A model, else pencil)",
    )
    p.set_defaults(func=_serve)
