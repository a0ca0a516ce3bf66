"""One web app page at 256 px switching variants back and forth, on the real LiteRT.js runtime.

Backs docs/performance.md ("Memory"): at 256 px (the default config, ngf 64, untrained) a
float16 and a float32 model together passed the wasm runtime's 2 GB heap while the page
freed the old model only after compiling the new one. This loads and runs float16 ->
float32 -> float16 -> float32 in one page, cross-origin isolated (threads) and not, and
prints what the page says after each run. It needs the cached runtime and Chromium.

    python benchmarks/browser_variant_switch.py
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).parent))
import browser_latency as bench  # noqa: E402

from pix2pix_tf.serve.browser import ISOLATION_HEADERS  # noqa: E402
from pix2pix_tf.webapp import site  # noqa: E402
from pix2pix_tf.webapp.headless import NOT_LOADING, StaticServer  # noqa: E402

SIZE = 256
ORDER = ["float16", "float32", "float16", "float32"]


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="pix2pix_switch_"))
    bench.untrained_export(scratch / "export", SIZE, sorted(set(ORDER)))
    web = site.write_site(scratch / "export", scratch / "web")
    pixels = bench.label_map(SIZE, 0)
    rgba = np.concatenate([pixels, np.full((SIZE, SIZE, 1), 255, np.uint8)], -1)
    failed = False
    for name, headers in (("isolated", ISOLATION_HEADERS), ("not isolated", {})):
        server = StaticServer(web, headers)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=bench.CHROMIUM, args=["--no-sandbox"])
                page = browser.new_page()
                page.goto(server.url + "/")
                page.wait_for_function(NOT_LOADING, timeout=bench.PAGE_TIMEOUT_MS)
                page.evaluate(bench.PUT_CANVAS, [rgba.ravel().tolist(), SIZE])
                for run, variant in enumerate(ORDER, 1):
                    if page.input_value("#variant") != variant:
                        page.select_option("#variant", variant)
                        page.wait_for_function(NOT_LOADING, timeout=bench.PAGE_TIMEOUT_MS)
                    page.click("#translate")
                    page.wait_for_function(
                        f"() => document.getElementById('output').dataset.runs === '{run}' "
                        "|| document.getElementById('status').dataset.state === 'error'",
                        timeout=bench.PAGE_TIMEOUT_MS,
                    )
                    error = page.text_content("#error")
                    failed |= bool(error)
                    print(f"{name}, run {run}, {variant}: {page.text_content('#status')} {error}".rstrip(), flush=True)
                browser.close()
        finally:
            server.stop()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
