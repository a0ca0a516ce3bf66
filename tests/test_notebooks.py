"""The walkthrough notebooks: executed in quick mode, and checked as committed."""

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
# Library internals a notebook must call, never redefine.
REDEFINITIONS = re.compile(
    r"keras\.layers\.\w+\(|tf\.GradientTape\(|def \w*(loss|sharpness)\w*\(|class \w+\(.*(Layer|Model)\)|for .* in runs"
)
PERSONAL = re.compile(r"(/tmp/|/root/|/home/|/work/|/Users/|C:\\\\)")


def test_all_five_walkthroughs_exist():
    assert [p.stem for p in NOTEBOOKS] == [
        "01_data",
        "02_models",
        "03_training",
        "04_evaluation",
        "05_export_and_deploy",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_copy_is_clean_and_has_outputs(path):
    book = nbformat.read(path, as_version=4)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert "PIX2PIX_QUICK" in code[0].source  # the first cell holds the parameters
    for cell in code:
        assert not REDEFINITIONS.search(cell.source), cell.source
        assert cell.get("execution_count") is not None, "committed without running"
        assert not any(o.get("output_type") == "error" for o in cell.outputs)
    text = json.dumps([c.outputs for c in code])
    assert not PERSONAL.search(text), PERSONAL.search(text).group(0)
    assert "image/png" in text  # figures are visible without running anything


def test_evaluation_notebook_runs_table1_through_the_experiment_runner():
    book = nbformat.read(NOTEBOOKS[3], as_version=4)
    source = "\n".join(c.source for c in book.cells if c.cell_type == "code")
    assert 'run_experiment("objective"' in source and "train(" not in source


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(path, tmp_path, monkeypatch):
    monkeypatch.setenv("PIX2PIX_QUICK", "1")
    monkeypatch.setenv("PIX2PIX_NOTEBOOK_DIR", str(tmp_path / "runs"))
    book = nbformat.read(path, as_version=4)
    NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
