"""Load test of `pix2pix-tf serve`: throughput and latency under concurrent loopback clients.

Starts the server (the shipped demo model unless --model is given) on a free
127.0.0.1 port, once without and once with server-side batching, and sends a fixed
number of `translate_bytes` predict requests from N concurrent clients. Bounded in
count and time; it stops the servers itself. Prints a table and writes it as JSON.

    python benchmarks/serve_load.py --clients 32 --requests 640
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from pix2pix_tf.serve import free_port

ROOT = Path(__file__).resolve().parents[1]


def start(model: str | None, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    argv = [sys.executable, "-m", "pix2pix_tf", "serve", "--port", str(port), *extra, *([model] if model else [])]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server failed: {process.communicate()[1][-2000:]}")
        try:
            if httpx.get(f"{url}/v1/models/pix2pix", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("server did not come up in 120 s")


async def load(url: str, body: bytes, clients: int, requests: int, timeout: float) -> dict:
    latencies, errors, queue = [], 0, asyncio.Queue()
    for _ in range(requests):
        queue.put_nowait(None)

    async def client(session: httpx.AsyncClient):
        nonlocal errors
        while not queue.empty():
            queue.get_nowait()
            start = time.perf_counter()
            try:
                reply = await session.post(f"{url}/v1/models/pix2pix:predict", content=body, timeout=timeout)
                ok = reply.status_code == 200 and "predictions" in reply.json()
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - start)
            errors += not ok

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits) as session:
        await client_warmup(session, url, body)
        start = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        elapsed = time.perf_counter() - start
    ms = sorted(1000 * t for t in latencies)
    return {
        "requests": len(ms),
        "errors": errors,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(ms) / elapsed, 1),
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 1),
    }


async def client_warmup(session: httpx.AsyncClient, url: str, body: bytes) -> None:
    for _ in range(3):  # the first calls trace and warm up the graph
        await session.post(f"{url}/v1/models/pix2pix:predict", content=body, timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="export dir, SavedModel dir or work dir (default: the shipped demo model)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=640, help="requests per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per server configuration")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--batch-timeout-ms", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request before it counts as an error")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "serve_load.json"))
    args = parser.parse_args()

    labels = np.asarray(Image.open(ROOT / "pix2pix_tf/serve/static/examples/facade_1.png").convert("RGB"))
    buffer = io.BytesIO()
    Image.fromarray(labels).save(buffer, "PNG")
    body = json.dumps(
        {"signature_name": "translate_bytes", "instances": [{"b64": base64.b64encode(buffer.getvalue()).decode()}]}
    ).encode()
    configs = {
        "no batching": [],
        f"--max-batch {args.max_batch} --batch-timeout-ms {args.batch_timeout_ms:g}": [
            "--max-batch",
            str(args.max_batch),
            "--batch-timeout-ms",
            str(args.batch_timeout_ms),
        ],
    }
    runs = {name: [] for name in configs}
    for name, extra in configs.items():
        process, url = start(args.model, extra)
        try:
            for _ in range(args.repeats):
                runs[name].append(asyncio.run(load(url, body, args.clients, args.requests, args.timeout)))
        finally:
            process.terminate()
            process.wait(timeout=60)
    results = {name: summarise(rows) for name, rows in runs.items()}
    print(
        f"{args.clients} concurrent clients, {args.requests} translate_bytes requests per run, "
        f"{args.repeats} runs per server (median, [min, max]), 64 px PNG"
    )
    print("| server | requests | errors | requests/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        cells = [f"{r[k]['median']} [{r[k]['min']}, {r[k]['max']}]" for k in ("requests_per_s", "p50_ms", "p99_ms")]
        print(f"| {name} | {r['requests']} | {r['errors']} | {' | '.join(cells)} |")
    report = {"clients": args.clients, "repeats": args.repeats, "results": results, "runs": runs}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


def summarise(rows: list[dict]) -> dict:
    """All runs of one server: total requests and errors, median and range of each figure."""
    summary = {"requests": sum(r["requests"] for r in rows), "errors": sum(r["errors"] for r in rows)}
    for key in ("requests_per_s", "p50_ms", "p99_ms"):
        values = [r[key] for r in rows]
        summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return summary


if __name__ == "__main__":
    main()
