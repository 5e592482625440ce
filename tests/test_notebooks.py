"""The tutorial notebooks match their generator, import only the package's public face, keep the
outputs of one clean full-size run, and run top to bottom again (small-data switch on)."""

from __future__ import annotations

import importlib.util
import os
import re
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO, data_dir
from public_face import public_face_problem, toolkit_imports

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def load_builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", REPO / "notebooks" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_notebooks_match_their_generator(tmp_path):
    builder = load_builder()
    written = builder.write_all(tmp_path, outputs_from=REPO / "notebooks")
    assert sorted(p.name for p in written) == [p.name for p in NOTEBOOKS]
    for path in NOTEBOOKS:
        assert path.read_text(encoding="utf-8") == (tmp_path / path.name).read_text(encoding="utf-8"), \
            f"{path.name} is stale: run python notebooks/build_notebooks.py --execute"


def test_the_notebooks_import_only_the_public_face():
    """Every ``semmatch_tf`` import in a tutorial names ``semmatch_tf`` or a subpackage (a folder with
    an ``__init__.py``) whose ``__all__`` holds the name: no module paths such as
    ``semmatch_tf.training.trainer`` (the set-up cell's quiet TensorFlow import included:
    ``semmatch_tf.import_tensorflow``)."""
    builder = load_builder()
    problems, imports = [], 0
    for notebook, cells in builder.NOTEBOOKS.items():
        for number, cell in enumerate(cells):
            if cell.cell_type != "code":
                continue
            for line, module, name in toolkit_imports(cell.source):
                imports += 1
                problem = public_face_problem(module, name)
                if problem:
                    problems.append(f"{notebook} cell {number} line {line}: {module}"
                                    + (f".{name}" if name else "") + f": {problem}")
    assert imports > 20, "the check found the notebooks' imports"
    assert not problems, "\n".join(problems)


# What a reader must not see in a kept output: TensorFlow C++ log lines, Python warnings, retracing.
NOISE = re.compile(r"^[IWEF]\d{4} |Warning:|WARNING|retracing|Traceback", re.MULTILINE)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebooks_keep_the_outputs_of_one_clean_full_run(path):
    notebook = nbformat.read(path, as_version=4)
    run = notebook.metadata.get("semmatch", {}).get("executed")
    assert run and run["small"] is False, f"{path.name}: run python notebooks/build_notebooks.py --execute"
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1)), \
        "every code cell ran, once, top to bottom in one kernel"
    outputs = [output for cell in cells for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    streams = "".join(o.text for o in outputs if o.output_type == "stream")
    assert not NOISE.search(streams), NOISE.search(streams).group(0)
    assert len(outputs) >= len(cells) // 2, "a tutorial shows what its steps print"


#: Notebooks whose small-data execution is slow (2-3 min each: BERT pretraining, e5); their committed
#: full-size outputs and their imports are still checked by default, and ``-m slow`` executes them.
SLOW_TO_EXECUTE = {"03_bert_matcher", "06_multilingual"}


@pytest.mark.notebook
@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW_TO_EXECUTE else p
                                  for p in NOTEBOOKS], ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    monkeypatch.setenv("SEMMATCH_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("SEMMATCH_DATA_DIR", str(data_dir()))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    outputs = [o for c in notebook.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    streams = "".join(o.text for o in outputs if o.output_type == "stream")
    assert not NOISE.search(streams), NOISE.search(streams).group(0)
