"""Re-executes the walkthrough notebooks and stores their outputs, stamped with the library's commit.

    python notebooks/refresh.py              # all five, full mode, outputs stored in place
    python notebooks/refresh.py 03 05        # some of them
    python notebooks/refresh.py --quick --out /tmp/nb   # CI's quick mode, copies written elsewhere

Stored outputs must come from committed library code: in place, the run refuses while
`pix2pix_tf/` has uncommitted changes, and records the commit (and the mode and seconds
each took) in the notebook's metadata under `pix2pix_tf`; tests/test_notebooks.py then
fails as soon as `pix2pix_tf/` differs from that commit. Each notebook runs in a kernel
started in a temporary directory, so none depends on where it is started from.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NOTEBOOKS = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
TIMEOUT_S = 1800  # one cell; full mode's longest (notebook 04's experiment) takes minutes


def library_commit() -> str:
    """HEAD's commit, if `pix2pix_tf/` has no uncommitted change; else exits saying so."""
    changed = _git("status", "--porcelain", "--", "pix2pix_tf")
    if changed:
        sys.exit(f"pix2pix_tf/ has uncommitted changes; commit them first, so the outputs name their code:\n{changed}")
    return _git("rev-parse", "HEAD")


def execute(path: Path, quick: bool, work: Path) -> tuple[nbformat.NotebookNode, float]:
    """Runs every cell of `path` in a fresh kernel; returns the executed notebook and its seconds."""
    book = nbformat.read(path, as_version=4)
    os.environ["PIX2PIX_NOTEBOOK_DIR"] = str(work)
    os.environ.pop("PIX2PIX_QUICK", None)
    if quick:
        os.environ["PIX2PIX_QUICK"] = "1"
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as cwd:
        client = NotebookClient(
            book, timeout=TIMEOUT_S, kernel_name="python3", record_timing=False, resources={"metadata": {"path": cwd}}
        )
        try:
            client.execute()
        except CellExecutionError as error:
            sys.exit(f"{path.name}: a cell failed; nothing was stored\n{error}")
    for cell in book.cells:  # timings of an earlier run would pass for this one's
        cell.metadata.pop("execution", None)
    return book, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help="notebook numbers or names (default: all)")
    parser.add_argument("--quick", action="store_true", help="PIX2PIX_QUICK=1, as CI runs them")
    parser.add_argument("--out", type=Path, help="write the executed copies here instead of in place")
    parser.add_argument("--work", type=Path, help="PIX2PIX_NOTEBOOK_DIR (default: a new temporary folder)")
    args = parser.parse_args()
    chosen = [p for p in NOTEBOOKS if not args.only or any(p.name.startswith(o) for o in args.only)]
    if not chosen:
        parser.error(f"no notebook matches {args.only}; there are {', '.join(p.stem for p in NOTEBOOKS)}")
    if args.out is None and args.quick:
        parser.error("--quick outputs are not stored in place: add --out DIR")
    commit = library_commit() if args.out is None else _git("rev-parse", "HEAD")
    work = args.work or Path(tempfile.mkdtemp(prefix="pix2pix_notebooks_"))
    for path in chosen:
        book, seconds = execute(path, args.quick, work)
        book.metadata["pix2pix_tf"] = {
            "commit": commit,
            "mode": "quick" if args.quick else "full",
            "seconds": round(seconds),
        }
        target = path if args.out is None else args.out / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(book, target)
        print(f"{path.name}: {seconds:.0f} s -> {target}", flush=True)


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    main()
