"""The script behind docs/performance.md's browser figures (benchmarks/browser_latency.py), at its smoke-test size.

It needs Debian's Chromium and the cached LiteRT.js runtime, as the browser tests do: without them
it skips, or fails when CI is set.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pix2pix_tf.webapp import runtime

REPO = Path(__file__).resolve().parents[1]
CONDITIONS = ["python, 1 thread", "python, all cores", "browser wasm, 1 thread", "browser wasm, threads"]


def test_the_browser_latency_benchmark_measures_every_condition(tmp_path):
    missing = [
        what
        for what, ok in (("Chromium", shutil.which("chromium")), ("the cached LiteRT.js runtime", runtime.cached()))
        if not ok
    ]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{' and '.join(missing)} missing in CI: .ci/run installs both")
        pytest.skip(f"needs {' and '.join(missing)}")
    out, table = tmp_path / "r.json", tmp_path / "t.md"
    argv = [sys.executable, str(REPO / "benchmarks/browser_latency.py"), "--quick", "--json", str(out)]
    result = subprocess.run([*argv, "--markdown", str(table)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    # The shipped model's two files, each under the four conditions, every timed run kept.
    assert list(report["latency_ms"]) == ["64"] and list(report["latency_ms"]["64"]) == ["float16", "int8"]
    for variant, row in report["latency_ms"]["64"].items():
        assert list(row) == CONDITIONS
        for condition, figure in row.items():
            assert 0 < figure["min"] <= figure["median"] <= figure["max"], (variant, condition)
            assert [len(runs) for runs in report["runs_ms"]["64"][variant][condition]] == [2]
    # Plain static serving is not cross-origin isolated (one thread); serve's headers make it so (threads).
    plain, isolated = (report["browser"]["isolation"][c] for c in CONDITIONS[2:])
    assert (plain["isolated"], plain["shared_array_buffer"], plain["threads"]) == ([False], [False], [1])
    assert plain["wasm"] == ["litert_wasm_internal.wasm"] and not plain["headers"]
    assert (isolated["isolated"], isolated["shared_array_buffer"]) == ([True], [True])
    assert isolated["wasm"] == ["litert_wasm_threaded_internal.wasm"]
    assert isolated["headers"]["Cross-Origin-Embedder-Policy"] == "require-corp"
    rows = [
        line for line in table.read_text().splitlines() if line.startswith("| float16") or line.startswith("| int8")
    ]
    assert len(rows) == 2 and all(row.count("|") == 8 for row in rows)
