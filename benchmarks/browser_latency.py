"""Latency of the TFLite variants in the browser (LiteRT.js, wasm) beside the Python interpreter's.

    python benchmarks/browser_latency.py            # writes benchmarks/browser_latency.json
    python benchmarks/browser_latency.py --quick    # a smoke test of the script: 64 px, tiny counts

The Markdown table goes to stdout (and to `--markdown PATH` if given); docs/performance.md
quotes it, so it is updated by hand.

Models, per size:
  * 64 px: the shipped demo model (`pix2pix_tf.shipped_model()`, ngf 16), its float16 and
    int8 files as shipped; float32 and dynamic are converted here from its SavedModel's
    weights (the shipped export has no such files), and checked against its float16 file.
  * 256 px: a generator of the default config (ngf 64) with untrained weights, converted
    here. Latency does not depend on the weights' values: the same ops run on the same shapes.
Conversion is the package's own (`pix2pix_tf.export.tflite.convert`, both signatures), int8
calibrated on a few synthetic facade label maps. Each size's files go into an export folder
whose static web app the package writes (`webapp.site.write_site`, the page `pix2pix-tf web`
writes), so the browser runs the page as shipped.

Conditions, for every variant at every size:
  * Python, 1 thread, and Python, all cores: ai-edge-litert through
    `pix2pix_tf.inference.TFLiteRunner`; one call on one image, pixels -> [-1, 1] included.
  * browser wasm, 1 thread: the web app served as `python -m http.server` serves it (the
    same handler, in this process), in headless Chromium. No COOP/COEP headers, so the page
    is not cross-origin isolated, has no SharedArrayBuffer, and LiteRT.js runs its
    single-threaded wasm build. This is what GitHub Pages and any plain static host give.
  * browser wasm, threads: the same folder served with `pix2pix-tf serve`'s headers,
    Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp.
    The page is cross-origin isolated, SharedArrayBuffer exists, and the page loads the
    threaded wasm build (its thread count is the one the page reports).
The browser's figure is the one the page itself shows after each click on "translate"
("this run N ms": performance.now() around the pixels' conversion, model.run and the copy of
the output out of the runtime), read from the page; every measurement opens the page afresh
(see `browser_ms`) and picks the variant there. WebGPU is not measured: headless Chromium
has no adapter here, so the page runs wasm (checked on every run).

Rounds are interleaved: each round runs every size and variant under the four conditions
back to back, their order rotating from round to round, so that drift in the machine's
speed hits all conditions alike. In a round, each condition gets `--warmup` untimed runs
(after the model's load, also untimed) and then timed runs; its figure for the round is
their median. Tables give median [min, max] over the rounds; the JSON keeps every run.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from pix2pix_tf import shipped_model  # noqa: E402
from pix2pix_tf.artifacts.exportdir import ExportDir  # noqa: E402
from pix2pix_tf.artifacts.files import load_config, save_config, write_json  # noqa: E402
from pix2pix_tf.config import TFLITE_VARIANTS, Config  # noqa: E402
from pix2pix_tf.data.synthetic import FACADE_PALETTE, facade_labels  # noqa: E402
from pix2pix_tf.inference import TFLiteRunner, available_cores  # noqa: E402
from pix2pix_tf.precision import cpu_model  # noqa: E402
from pix2pix_tf.serve.browser import ISOLATION_HEADERS  # noqa: E402
from pix2pix_tf.webapp import runtime, site  # noqa: E402
from pix2pix_tf.webapp.headless import NOT_LOADING, PUT_CANVAS, StaticServer, chromium  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = chromium()
CONDITIONS = ("python, 1 thread", "python, all cores", "browser wasm, 1 thread", "browser wasm, threads")
# The two browser conditions: how their server answers (serve's headers make a page cross-origin isolated).
SERVED = {"browser wasm, 1 thread": {}, "browser wasm, threads": ISOLATION_HEADERS}
JSON = "benchmarks/browser_latency.json"
CALIBRATION_IMAGES = 8
PAGE_TIMEOUT_MS = 300_000  # loading a 218 MB model takes seconds; a page that hangs fails the run
RUN = re.compile(r"on wasm, (\d+) threads?.*loaded in (\d+) ms; this run ([\d.]+) ms")


def label_map(size: int, seed: int) -> np.ndarray:
    """A synthetic facade label map, (size, size, 3) uint8 RGB in the facade palette."""
    return FACADE_PALETTE[facade_labels(np.random.default_rng(seed), size)].astype(np.uint8)


def to_model(pixels: np.ndarray) -> np.ndarray:
    """uint8 (H, W, C) -> float32 (1, H, W, C) in [-1, 1], as the Translator and the page compute it."""
    return pixels[None].astype(np.float32) / np.float32(127.5) - np.float32(1)


def _convert(generator, variants: list[str], export: ExportDir, size: int) -> None:
    from pix2pix_tf.export.tflite import convert

    representative = [to_model(label_map(size, seed)) for seed in range(CALIBRATION_IMAGES)]
    for variant in variants:
        started = time.perf_counter()
        export.tflite(variant).write_bytes(convert(generator, variant, representative))
        print(f"  {size} px {variant}: converted in {time.perf_counter() - started:.0f} s", flush=True)


def shipped_export(out: Path, variants: list[str]) -> dict:
    """The shipped model as an export in `out`, with the variants it lacks converted from its weights."""
    shutil.copytree(shipped_model(), out)
    export = ExportDir(out)
    shipped = [v for v in variants if export.tflite(v).is_file()]
    missing = [v for v in variants if v not in shipped]
    agreements = {}
    if missing:
        import tensorflow as tf

        from pix2pix_tf.export.tflite import AGREEMENT_GATES, psnr
        from pix2pix_tf.models import generator_for

        config = load_config(export.config)
        generator = generator_for(config, precision="float32")
        saved = tf.saved_model.load(str(export.saved_model.root))
        weights = list(saved.tf_variables)  # the generator's variables in its own order (signatures.GeneratorModule)
        if [tuple(w.shape) for w in weights] != [tuple(v.shape) for v in generator.variables]:
            raise SystemExit(f"{export.saved_model.root}: its variables do not fit the generator its config builds")
        for variable, weight in zip(generator.variables, weights, strict=True):
            variable.assign(weight.numpy())
        _convert(generator, missing, export, config.data.image_size)
        # The copied weights are the shipped ones: the conversions agree with the shipped float16 file.
        x = to_model(label_map(config.data.image_size, 0))
        reference = TFLiteRunner(ExportDir(shipped_model()).tflite("float16"), num_threads=1)(x)
        for variant in missing:
            agreement = psnr(TFLiteRunner(export.tflite(variant), num_threads=1)(x), reference)
            gate = min(AGREEMENT_GATES[variant], AGREEMENT_GATES["float16"])  # the reference is float16
            if agreement < gate:
                raise SystemExit(f"{variant} converted from the shipped weights agrees to {agreement:.1f} dB only")
            agreements[variant] = round(agreement, 1)
    for variant in set(TFLITE_VARIANTS) - set(variants):
        export.tflite(variant).unlink(missing_ok=True)
    return {
        "model": "the shipped demo model (ngf 16), trained",
        "shipped": shipped,
        "converted_here": missing,
        "psnr_db_against_shipped_float16": agreements,
    }


def untrained_export(out: Path, size: int, variants: list[str]) -> dict:
    """An export of an untrained generator of the default config at `size`: config, SavedModel, TFLite files."""
    from pix2pix_tf.export.saved_model import count_parameters, write_saved_model
    from pix2pix_tf.models import generator_for

    config = Config().replace(data={"image_size": size}, train={"precision": "float32"})
    generator = generator_for(config, seed=0)
    export = ExportDir(out)
    out.mkdir(parents=True)
    save_config(config, export.config)
    parameters = count_parameters(generator)
    write_json(export.model_card, {"note": "untrained weights, for latency only", "parameters": parameters})
    write_saved_model(export, generator, config, stochastic=False, parameters=parameters)
    _convert(generator, variants, export, size)
    return {
        "model": f"the default config's generator (ngf {config.model.ngf}), untrained",
        "shipped": [],
        "converted_here": variants,
    }


def browser_ms(browser, url: str, pixels: np.ndarray, variant: str, warmup: int, runs: int) -> tuple[list, dict]:
    """ms of each timed run as the web app's page shows it, and what the page saw.

    A fresh page for every measurement, so that no measurement runs in a heap (or a
    thread pool) another one has used.

    Args:
        browser: Playwright's Chromium.
        url: the web app's URL.
        pixels: the input, uint8 (S, S, 3), put on the page's canvas.
        variant: the model to pick on the page.
        warmup: untimed runs first.
        runs: timed runs.

    Returns:
        (the times, {threads, load_ms, isolated, shared_array_buffer, wasm}).
    """
    page = browser.new_page()
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.goto(url + "/")
        _ready(page)  # the page loads its default variant first
        if page.input_value("#variant") != variant:
            page.select_option("#variant", variant)
            _ready(page)
        size = pixels.shape[0]
        rgba = np.concatenate([pixels, np.full((size, size, 1), 255, np.uint8)], -1)
        page.evaluate(PUT_CANVAS, [rgba.ravel().tolist(), size])
        times, found = [], None
        for run in range(1, warmup + runs + 1):
            page.click("#translate")
            page.wait_for_function(
                f"() => document.getElementById('output').dataset.runs === '{run}' "
                "|| document.getElementById('status').dataset.state === 'error'",
                timeout=PAGE_TIMEOUT_MS,
            )
            status = page.text_content("#status")
            found = RUN.search(status)
            if not found or f"in this browser: {variant} on wasm" not in status:
                raise SystemExit(f"{url}, {variant}: the page says {status!r} {page.text_content('#error')!r}")
            if run > warmup:
                times.append(float(found[3]))
        seen = {
            "threads": int(found[1]),
            "load_ms": int(found[2]),
            "isolated": page.evaluate("() => self.crossOriginIsolated"),
            "shared_array_buffer": page.evaluate("() => typeof SharedArrayBuffer === 'function'"),
            "wasm": sorted({Path(u).name for u in requests if u.endswith(".wasm")}),
        }
    finally:
        page.close()
    return times, seen


def _ready(page) -> None:
    page.wait_for_function(NOT_LOADING, timeout=PAGE_TIMEOUT_MS)
    error = page.text_content("#error")
    if error:
        raise SystemExit(f"{page.url}: the page says: {error}")


def python_ms(path: Path, pixels: np.ndarray, threads: int | None, warmup: int, runs: int) -> list[float]:
    """ms of each timed call of the Python interpreter on one image, pixels -> [-1, 1] included."""
    runner = TFLiteRunner(path, num_threads=threads)
    for _ in range(warmup):  # XNNPACK packs the weights on the first call
        runner(to_model(pixels))
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        runner(to_model(pixels))
        times.append(round(1000 * (time.perf_counter() - started), 3))
    return times


def _summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _ms(s: dict) -> str:
    precision = 1 if s["median"] < 100 else 0
    return f"{s['median']:.{precision}f} [{s['min']:.{precision}f}, {s['max']:.{precision}f}]"


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def markdown(results: dict) -> str:
    """The line describing the run and the table of docs/performance.md's browser section."""
    m = results["machine"]
    threads = "/".join(map(str, results["browser"]["isolation"][CONDITIONS[-1]]["threads"]))
    counts = " and ".join(f"{n} at {size} px" for size, n in results["runs"].items())
    lines = [
        f"Measured by `{results['command']}` on {m['cpu']}, {m['cores']} cores, on {results['date']}: "
        f"{m['chromium']} (headless), LiteRT.js {m['litertjs']}, ai-edge-litert {m['ai_edge_litert']}; "
        f"it took {results['seconds'] / 60:.1f} min. {_count(results['rounds'], 'interleaved round')}; in each, "
        f"per condition, {_count(results['warmup'], 'untimed run')}, then timed runs ({counts}), their median "
        "taken. "
        "ms per image, median [min, max] over the rounds. "
        f"The 1-minute load average as each round began, and at the end: "
        f"{', '.join(map(str, results['load_average_per_round']))}. "
        f"Raw numbers, every run included: `{results['json']}`.",
        "",
        f"| variant | size | MB | Python, 1 thread | Python, {m['cores']} threads | browser wasm, 1 thread "
        f"| browser wasm, {threads} threads |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, by_variant in results["latency_ms"].items():
        for variant, row in by_variant.items():
            mb = results["models"][size]["bytes"][variant] / 1e6
            cells = " | ".join(_ms(row[c]) for c in CONDITIONS)
            lines.append(f"| {variant} | {size} px | {mb:.1f} | {cells} |")
    return "\n".join(lines) + "\n"


def build_apps(scratch: Path, sizes: list[str], variants: list[str]) -> dict:
    """Each size's export in scratch/exports/SIZE and its web app in scratch/apps/SIZE; what each model is."""
    models = {}
    for size in sizes:
        print(f"{size} px models ...", flush=True)
        out = scratch / "exports" / size
        models[size] = shipped_export(out, variants) if size == "64" else untrained_export(out, int(size), variants)
        models[size]["bytes"] = {v: ExportDir(out).tflite(v).stat().st_size for v in variants}
        site.write_site(out, scratch / "apps" / size, name=f"{size} px")
    return models


def run_rounds(scratch: Path, sizes: list[str], variants: list[str], rounds: int, warmup: int, runs: dict) -> dict:
    """Every condition on every size and variant, `rounds` interleaved rounds; the runs and what the pages saw."""
    from playwright.sync_api import sync_playwright

    inputs = {size: label_map(int(size), seed=100) for size in sizes}
    timed = {size: {v: {c: [] for c in CONDITIONS} for v in variants} for size in sizes}
    load_ms = {size: {v: {c: [] for c in SERVED} for v in variants} for size in sizes}
    seen = {c: {"isolated": set(), "shared_array_buffer": set(), "wasm": set(), "threads": set()} for c in SERVED}
    load_average = []  # the 1-minute load average as each round starts and at the end: other jobs show up here
    servers = {c: StaticServer(scratch / "apps", headers) for c, headers in SERVED.items()}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            for r in range(rounds):
                order = CONDITIONS[r % len(CONDITIONS) :] + CONDITIONS[: r % len(CONDITIONS)]
                print(f"round {r + 1} of {rounds}: {', '.join(order)}", flush=True)
                load_average.append(round(os.getloadavg()[0], 2))
                for size in sizes:
                    for variant in variants:
                        for c in order:
                            if c in SERVED:
                                url = f"{servers[c].url}/{size}"
                                times, page = browser_ms(browser, url, inputs[size], variant, warmup, runs[size])
                                load_ms[size][variant][c].append(page.pop("load_ms"))
                                for key, value in page.items():
                                    seen[c][key].update(value if isinstance(value, list) else [value])
                            else:
                                path = ExportDir(scratch / "exports" / size).tflite(variant)
                                threads = 1 if c == "python, 1 thread" else None
                                times = python_ms(path, inputs[size], threads, warmup, runs[size])
                            timed[size][variant][c].append(times)
                        last = {c: statistics.median(timed[size][variant][c][-1]) for c in CONDITIONS}
                        print(f"  {size} px {variant}: " + ", ".join(f"{c} {ms:.1f} ms" for c, ms in last.items()))
            load_average.append(round(os.getloadavg()[0], 2))
            chromium = f"Chromium {browser.version}"
            browser.close()
    finally:
        for server in servers.values():
            server.stop()
    isolation = {c: {"headers": SERVED[c], **{key: sorted(v) for key, v in seen[c].items()}} for c in SERVED}
    plain, isolated = (isolation[c]["isolated"] for c in SERVED)
    if plain != [False] or isolated != [True]:
        raise SystemExit(f"the pages were not isolated as their servers' headers should make them: {isolation}")
    return {
        "chromium": chromium,
        "isolation": isolation,
        "runs_ms": timed,
        "browser_load_ms": load_ms,
        "load_average": load_average,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3; quick: 1)")
    parser.add_argument("--runs-64", type=int, help="timed runs per condition and round at 64 px (default 20)")
    parser.add_argument("--runs-256", type=int, help="timed runs per condition and round at 256 px (default 5)")
    parser.add_argument("--warmup", type=int, help="untimed runs before them (default 1)")
    parser.add_argument("--sizes", help="comma-separated, of 64 and 256 (default both; quick: 64)")
    parser.add_argument(
        "--variants", help="comma-separated (default: all four; quick: float16,int8, the shipped files)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny counts: checks the script, numbers mean little")
    parser.add_argument("--json", help="default: benchmarks/browser_latency.json (quick: a temporary file)")
    parser.add_argument("--markdown", help="also write the Markdown table here (it always goes to stdout)")
    args = parser.parse_args()
    quick = args.quick
    rounds = args.rounds or (1 if quick else 3)
    warmup = 1 if args.warmup is None else args.warmup
    runs = {"64": args.runs_64 or (2 if quick else 20), "256": args.runs_256 or (2 if quick else 5)}
    sizes = (args.sizes or ("64" if quick else "64,256")).split(",")
    variants = (args.variants or ("float16,int8" if quick else ",".join(TFLITE_VARIANTS))).split(",")
    if set(sizes) - set(runs) or set(variants) - set(TFLITE_VARIANTS):
        parser.error(f"--sizes takes 64 and 256, --variants {', '.join(TFLITE_VARIANTS)}")
    if runtime.cached() is None:
        raise SystemExit(
            "the LiteRT.js runtime is not cached: fetch it once with `python -m pix2pix_tf.webapp.runtime`"
        )
    if CHROMIUM is None:
        raise SystemExit("no Chromium: install it with `apt-get install -y chromium`")
    default_json = Path(tempfile.gettempdir()) / "browser_latency_quick.json" if quick else ROOT / JSON
    json_path = Path(args.json or default_json).resolve()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="browser_latency_") as scratch:
        models = build_apps(Path(scratch), sizes, variants)
        built = time.perf_counter()
        seen = run_rounds(Path(scratch), sizes, variants, rounds, warmup, runs)
    timed = seen.pop("runs_ms")
    load_average = seen.pop("load_average")
    results = {
        "command": " ".join(["python benchmarks/browser_latency.py", *sys.argv[1:]]),
        "json": str(json_path.relative_to(ROOT)) if json_path.is_relative_to(ROOT) else str(json_path),
        "date": time.strftime("%Y-%m-%d"),
        "seconds": time.perf_counter() - started,
        "seconds_converting": built - started,
        "machine": {
            "cpu": cpu_model(),
            "cores": available_cores(),
            "chromium": seen.pop("chromium"),
            "litertjs": runtime.VERSION,
            "ai_edge_litert": importlib.metadata.version("ai-edge-litert"),
        },
        "rounds": rounds,
        "warmup": warmup,
        "runs": {size: runs[size] for size in sizes},
        "load_average_per_round": load_average,
        "models": models,
        "browser": seen,
        # Per round, the median of its timed runs; then median [min, max] over the rounds.
        "latency_ms": {
            size: {
                v: {c: _summary([statistics.median(t) for t in timed[size][v][c]]) for c in CONDITIONS}
                for v in variants
            }
            for size in sizes
        },
        "runs_ms": timed,
    }
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results)
    if args.markdown:
        Path(args.markdown).write_text(text)
    print(text)
    print(f"results: {json_path}")


if __name__ == "__main__":
    main()
