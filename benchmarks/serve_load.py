"""Load test of `pix2pix-tf serve`: throughput and latency under concurrent loopback clients.

Starts the server (the shipped demo model unless --model is given) on a free
127.0.0.1 port, once without and once with server-side batching, and sends a fixed
number of `translate_bytes` predict requests from N concurrent clients. Bounded in
count and time; it stops the servers itself. Prints a table and writes it as JSON.

    python benchmarks/serve_load.py --clients 32 --requests 640

With --stall it measures instead what one large JSON request costs everyone else: the
worst latency of a small request (GET of the model's status, every 10 ms from another
client) while the largest float request the default limits allow, and a 30 MB body of
empty lists (issue 22), are parsed and answered (output: benchmarks/serve_stall.json).

With --memory it measures the server's resident memory (VmRSS, and the peak VmHWM, from
/proc) at its default limits under the memory attacks of issue 22: a GIF whose second
frame is 16384 x 16384 (~200 KB) sent to every route, then 12 concurrent native-size
uploads of an at-cap 4096 x 4096 PNG (one runs, 4 wait, the rest get 503). Output:
benchmarks/serve_memory.json. It takes a few minutes: each at-cap image is a full
4096 x 4096 pass through the generator.
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
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from pix2pix_tf.serve import free_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import gif_frame_bomb  # noqa: E402  (the tests' GIF frame bomb, one builder for both)


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


def stall(url: str, body: bytes, timeout: float) -> dict:
    """The worst latency of small requests sent while `body` is posted to :predict, and that post's time."""
    done: dict = {}

    def large():
        start = time.perf_counter()
        reply = httpx.post(f"{url}/v1/models/pix2pix:predict", content=body, timeout=timeout)
        done.update(status=reply.status_code, seconds=time.perf_counter() - start)

    thread = threading.Thread(target=large)
    latencies, deadline = [], time.monotonic() + timeout
    with httpx.Client() as session:
        thread.start()
        while thread.is_alive() and time.monotonic() < deadline:
            start = time.perf_counter()
            session.get(f"{url}/v1/models/pix2pix", timeout=timeout)
            latencies.append(time.perf_counter() - start)
            time.sleep(0.01)
    thread.join(timeout)
    return {
        "status": done.get("status"),
        "large_request_s": round(done.get("seconds", float("nan")), 2),
        "small_requests": len(latencies),
        "worst_small_ms": round(1000 * max(latencies, default=0.0)),
    }


def stall_bodies() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    # 64 images at the shipped model's 64 x 64, floats as Python writes them: the largest
    # request within the default limits' JSON value cap (1.05M values of 1.31M).
    floats = json.dumps({"instances": rng.uniform(-1, 1, (64, 64, 64, 3)).tolist()}).encode()
    return {
        f"largest float request ({len(floats) / 2**20:.0f} MB, 64 images)": floats,
        "30 MB of empty lists": b'{"instances": [' + b"[]," * 10_000_000 + b"[]]}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="export dir, SavedModel dir or work dir (default: the shipped demo model)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=640, help="requests per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per server configuration")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--batch-timeout-ms", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request before it counts as an error")
    parser.add_argument("--out", help="default: benchmarks/serve_load.json, or serve_stall.json with --stall")
    parser.add_argument("--stall", action="store_true", help="measure the stall a large JSON request causes instead")
    parser.add_argument("--memory", action="store_true", help="measure peak memory under the memory attacks instead")
    args = parser.parse_args()
    if args.memory:
        report = measure_memory(args)
        Path(args.out or ROOT / "benchmarks" / "serve_memory.json").write_text(json.dumps(report, indent=2) + "\n")
        return
    if args.stall:
        report = {"repeats": args.repeats, "stall": measure_stalls(args)}
        Path(args.out or ROOT / "benchmarks" / "serve_stall.json").write_text(json.dumps(report, indent=2) + "\n")
        return

    labels = np.asarray(Image.open(ROOT / "pix2pix_tf/webapp/static/examples/facade_1.png").convert("RGB"))
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
    Path(args.out or ROOT / "benchmarks" / "serve_load.json").write_text(json.dumps(report, indent=2) + "\n")


def measure_stalls(args) -> dict:
    process, url = start(args.model, [])
    try:
        idle = []
        for _ in range(20):
            start_s = time.perf_counter()
            httpx.get(f"{url}/v1/models/pix2pix", timeout=args.timeout)
            idle.append(1000 * (time.perf_counter() - start_s))
        rows = {"idle small request ms (median)": round(statistics.median(idle), 1)}
        for name, body in stall_bodies().items():
            runs = [stall(url, body, args.timeout) for _ in range(args.repeats)]
            worst = [r["worst_small_ms"] for r in runs]
            rows[name] = {
                "status": runs[0]["status"],
                "worst_small_ms": {"median": statistics.median(worst), "min": min(worst), "max": max(worst)},
                "large_request_s": statistics.median(r["large_request_s"] for r in runs),
            }
    finally:
        process.terminate()
        process.wait(timeout=60)
    print("| large request | its reply | worst latency of a small request, ms | the large request, s |")
    print("|---|---|---|---|")
    for name, row in rows.items():
        if isinstance(row, dict):
            w = row["worst_small_ms"]
            print(f"| {name} | {row['status']} | {w['median']} [{w['min']}, {w['max']}] | {row['large_request_s']} |")
    print(f"(a small request alone: {rows['idle small request ms (median)']} ms)")
    return rows


def _memory_mb(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    return {key: int(status.split(f"{key}:")[1].split()[0]) // 1024 for key in ("VmRSS", "VmHWM")}


def at_cap_png(side: int = 4096) -> bytes:
    """A side x side facade-like label map as PNG: at the default pixel cap, small on the wire."""
    labels = np.asarray(Image.open(ROOT / "pix2pix_tf/webapp/static/examples/facade_1.png").convert("RGB"))
    buffer = io.BytesIO()
    Image.fromarray(labels).resize((side, side), Image.NEAREST).save(buffer, "PNG")
    return buffer.getvalue()


async def _posts(url: str, requests: list[tuple[str, dict]], timeout: float) -> list[int]:
    async with httpx.AsyncClient(timeout=timeout) as client:
        replies = await asyncio.gather(*(client.post(url + path, **kw) for path, kw in requests))
    return [r.status_code for r in replies]


def measure_memory(args) -> dict:
    process, url = start(args.model, [])
    png_type = {"content-type": "image/png"}
    try:
        rows = {"idle": {**_memory_mb(process.pid), "statuses": []}}
        bomb = gif_frame_bomb(16384)
        predict = {"signature_name": "translate_bytes", "instances": [{"b64": base64.b64encode(bomb).decode()}] * 8}
        gif = {"content": bomb, "headers": {"content-type": "image/gif"}}
        statuses = asyncio.run(
            _posts(
                url,
                [
                    ("/translate", gif),
                    ("/translate?native_size=true", gif),
                    ("/v1/models/pix2pix:predict", {"json": predict}),
                ],
                args.timeout,
            )
        )
        rows[f"GIF frame bomb ({len(bomb) // 1024} KB) on /translate, native and :predict x8"] = {
            **_memory_mb(process.pid),
            "statuses": statuses,
        }
        image = at_cap_png()
        native = ("/translate?native_size=true", {"content": image, "headers": png_type})
        started = time.perf_counter()
        statuses = asyncio.run(_posts(url, [native] * 12, max(args.timeout, 900)))
        rows[f"12 concurrent native 4096x4096 PNGs ({len(image) // 1024} KB each)"] = {
            **_memory_mb(process.pid),
            "statuses": sorted(statuses),
            "seconds": round(time.perf_counter() - started, 1),
        }
    finally:
        process.terminate()
        process.wait(timeout=60)
    print("| after | replies | RSS MB | peak RSS so far MB |")
    print("|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['statuses']} | {row['VmRSS']} | {row['VmHWM']} |")
    return {"limits": "defaults", "rows": rows}


def summarise(rows: list[dict]) -> dict:
    """All runs of one server: total requests and errors, median and range of each figure."""
    summary = {"requests": sum(r["requests"] for r in rows), "errors": sum(r["errors"] for r in rows)}
    for key in ("requests_per_s", "p50_ms", "p99_ms"):
        values = [r[key] for r in rows]
        summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return summary


if __name__ == "__main__":
    main()
