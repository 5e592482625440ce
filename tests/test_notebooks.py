"""The tutorial notebooks run top to bottom (small-data switch on) and match their generator."""

from __future__ import annotations

import importlib.util
import os
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO, data_dir

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def load_builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", REPO / "notebooks" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_notebooks_match_their_generator_and_have_no_outputs(tmp_path):
    builder = load_builder()
    written = builder.write_all(tmp_path)
    assert sorted(p.name for p in written) == [p.name for p in NOTEBOOKS]
    for path in NOTEBOOKS:
        assert path.read_text(encoding="utf-8") == (tmp_path / path.name).read_text(encoding="utf-8"), \
            f"{path.name} is stale: run python notebooks/build_notebooks.py"
        notebook = nbformat.read(path, as_version=4)
        assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    monkeypatch.setenv("SEMMATCH_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("SEMMATCH_DATA_DIR", str(data_dir()))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
