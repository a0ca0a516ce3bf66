"""The walkthrough notebooks: stored as executed from the current library, quiet, and runnable anywhere.

The quick-mode runs execute every notebook in a kernel of a new venv that does not have
pix2pix_tf, as a reader's Colab-like kernel would be (TensorFlow and the other dependencies
already there): the notebook's own first cell must install the package (from a wheel, given
by PIX2PIX_TF_SOURCE) without reinstalling TensorFlow, and each kernel starts in a
temporary directory, not in the checkout.
"""

import json
import os
import re
import shutil
import site
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# Library internals a notebook must call, never redefine.
REDEFINITIONS = re.compile(
    r"keras\.layers\.\w+\(|tf\.GradientTape\(|def \w*(loss|sharpness)\w*\(|class \w+\(.*(Layer|Model)\)|for .* in runs"
)
# A private name of the library: pix2pix_tf.x._y, obj._y on a library object, or imported.
PRIVATE = re.compile(r"\b[A-Za-z]\w*\._[a-z]\w*|from pix2pix_tf[\w.]* import [^\n]*\b_\w+")
PERSONAL = re.compile(r"(/tmp/|/root/|/home/|/work/|/Users/|C:\\\\)")
# TensorFlow's native log lines (absl's format), Python tracebacks and warnings.
NOISE = re.compile(r"^[EWI]\d{4} \d\d:\d\d|Traceback \(most recent call last\)|\w*Warning:|^WARNING", re.M)
LEAKED_REPR = re.compile(r"^\[?<?(Text|Figure|matplotlib|<matplotlib)[ (.]")


def noise(book) -> list[str]:
    """What in a notebook's outputs a learner should not see: errors, stderr, log lines, reprs."""
    found = []
    for number, cell in enumerate(c for c in book.cells if c.cell_type == "code"):
        for output in cell.get("outputs", []):
            where = f"code cell {number + 1}"
            text = output.get("text", "")
            plain = output.get("data", {}).get("text/plain", "")
            if output.get("output_type") == "error":
                found.append(f"{where}: {output.get('ename')}: {output.get('evalue')}")
            if output.get("name") == "stderr":
                found.append(f"{where}: stderr: {text[:300]!r}")
            if NOISE.search(text) or NOISE.search(plain):
                found.append(f"{where}: {(NOISE.search(text) or NOISE.search(plain)).group(0)!r} in {text[:300]!r}")
            if LEAKED_REPR.match(plain) and "image/png" not in output.get("data", {}):
                found.append(f"{where}: a leaked repr {plain[:80]!r} (end the cell with plt.show())")
    return found


def _first_code_cell(path: Path) -> str:
    return next(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")


def test_all_five_walkthroughs_exist():
    assert [p.stem for p in NOTEBOOKS] == [
        "01_data",
        "02_models",
        "03_training",
        "04_evaluation",
        "05_export_and_deploy",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_copy_is_clean_quiet_and_has_pictures(path):
    book = nbformat.read(path, as_version=4)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert "PIX2PIX_TF_SOURCE" in code[0].source and "pip" in code[0].source  # the install cell comes first
    # The same in every notebook: the fresh-venv runs share one venv, where only the first installs.
    assert code[0].source == _first_code_cell(NOTEBOOKS[0])
    assert "PIX2PIX_QUICK" in code[1].source and "os.chdir" in code[1].source  # then the parameters
    for cell in code:
        assert not REDEFINITIONS.search(cell.source), cell.source
        assert not PRIVATE.search(cell.source), PRIVATE.search(cell.source).group(0)
        assert "parents[" not in cell.source and 'saved_model_cli",' not in cell.source
        assert cell.get("execution_count") is not None, "stored without running"
        assert "execution" not in cell.metadata, "a cell's timing from an earlier run (refresh.py drops them)"
    assert noise(book) == []
    text = json.dumps([c.outputs for c in code])
    assert not PERSONAL.search(text), PERSONAL.search(text).group(0)
    assert text.count("image/png") >= 2  # figures are visible without running anything


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_come_from_the_current_library(path):
    stamp = nbformat.read(path, as_version=4).metadata.get("pix2pix_tf", {})
    assert stamp.get("mode") == "full" and isinstance(stamp.get("seconds"), int), stamp
    commit = stamp.get("commit", "")
    assert re.fullmatch(r"[0-9a-f]{40}", commit), stamp
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the commit cannot be compared")
    known = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=REPO, capture_output=True)
    if known.returncode:
        pytest.skip(f"{commit} is not in this clone's history (a shallow clone)")
    changed = subprocess.run(
        ["git", "diff", "--name-only", commit, "HEAD", "--", "pix2pix_tf"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not changed, f"{path.name} ran against {commit[:10]}; since then {changed} changed: run notebooks/refresh.py"


def test_the_noise_check_catches_what_the_issue_saw():
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": "I0000 00:00:1795816034.433631  715 tf_record..\n"},
        {"output_type": "stream", "name": "stderr", "text": "x"},
        {
            "output_type": "execute_result",
            "execution_count": 1,
            "data": {"text/plain": "Text(0.5, 1.0, 't')"},
            "metadata": {},
        },
        {"output_type": "stream", "name": "stdout", "text": "UserWarning: something\n"},
    ]
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[o]) for o in outputs])
    assert len(noise(book)) == 4
    quiet = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[{**outputs[0], "text": "ok\n"}])])
    assert noise(quiet) == []


def test_evaluation_notebook_runs_table1_through_the_experiment_runner():
    book = nbformat.read(NOTEBOOKS[3], as_version=4)
    source = "\n".join(c.source for c in book.cells if c.cell_type == "code")
    assert re.search(r'run_experiment\(\s*"objective"', source) and "train(" not in source


def test_training_notebook_prints_the_two_tape_step():
    book = nbformat.read(NOTEBOOKS[2], as_version=4)
    printed = "\n".join(
        o.get("text", "") for c in book.cells if c.cell_type == "code" for o in c.outputs if "getsource" in c.source
    )
    assert printed.count("tf.GradientTape()") == 2 and "def replica_step" in printed


@pytest.fixture(scope="module")
def fresh_kernel(tmp_path_factory):
    """A Jupyter kernel of a new venv without pix2pix_tf (its dependencies visible, as in Colab), and
    PIX2PIX_TF_SOURCE pointing at a wheel of the checkout; yields (kernel name, venv python)."""
    root = tmp_path_factory.mktemp("fresh")
    source = root / "source"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", root / "dist", source], root)
    (wheel,) = (root / "dist").glob("pix2pix_tf-*.whl")
    # The dependencies, as a site directory without any trace of the checkout's own install.
    deps = root / "deps"
    deps.mkdir()
    for folder in site.getsitepackages():
        for entry in Path(folder).iterdir():
            if "pix2pix" not in entry.name and not (deps / entry.name).exists():
                (deps / entry.name).symlink_to(entry)
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], root)
    python = venv / "bin" / "python"
    lib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], root).strip())
    (lib / "dependencies.pth").write_text(f"{deps}\n")  # a path line: its own .pth files are not run
    assert _run([python, "-c", "import importlib.util as u; print(u.find_spec('pix2pix_tf'))"], root).strip() == "None"
    _run([python, "-m", "ipykernel", "install", "--prefix", root / "jupyter", "--name", "fresh-venv"], root)
    env = {"JUPYTER_PATH": str(root / "jupyter" / "share" / "jupyter"), "PIX2PIX_TF_SOURCE": str(wheel)}
    env["PIP_NO_INDEX"] = "1"  # a missing dependency fails the install instead of downloading it
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield "fresh-venv", python
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _run(argv, cwd: Path) -> str:
    result = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{argv}: {result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.slow
@pytest.mark.xdist_group("fresh_venv")  # one worker builds the venv and its wheel, not each
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode_in_a_fresh_venv_from_elsewhere(path, fresh_kernel, tmp_path, monkeypatch):
    kernel, python = fresh_kernel
    monkeypatch.setenv("PIX2PIX_QUICK", "1")
    monkeypatch.setenv("PIX2PIX_NOTEBOOK_DIR", str(tmp_path / "work"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    book = nbformat.read(path, as_version=4)
    NotebookClient(book, timeout=600, kernel_name=kernel, resources={"metadata": {"path": str(elsewhere)}}).execute()
    assert noise(book) == []
    # Where each would be imported from, without importing them: TensorFlow's import alone takes seconds.
    where = _run(
        [
            python,
            "-c",
            "from importlib.util import find_spec as f; print(f('pix2pix_tf').origin, f('tensorflow').origin)",
        ],
        elsewhere,
    )
    package, tensorflow = (Path(p).resolve() for p in where.split())
    assert package.is_relative_to(python.parent.parent.resolve()), package  # the install cell put it in the venv
    assert not tensorflow.is_relative_to(python.parent.parent.resolve()), tensorflow  # TensorFlow was kept
