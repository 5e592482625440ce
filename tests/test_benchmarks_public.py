"""The benchmarks are a package (``python -m benchmarks.run_x``) that uses only the public face.

Every ``semmatch_tf`` import in ``benchmarks/*.py`` names either ``semmatch_tf`` itself or a
subpackage (a folder with an ``__init__.py``), and each imported name is in that package's
``__all__``: no module paths such as ``semmatch_tf.training.trainer``. No benchmark touches
``sys.path``, and importing a benchmark module runs nothing.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from public_face import public_face_problem, toolkit_imports as source_imports

BENCHMARKS = REPO / "benchmarks"
FILES = sorted(BENCHMARKS.glob("*.py"))
RUNNABLE = sorted(p for p in FILES if p.stem.startswith("run_") or p.stem == "profile_steps")
#: Imported here to check they load; peers_child.py is the peer venv's script (it never imports us).
IMPORTABLE = [p for p in FILES if p.stem not in ("__init__", "peers_child")]


def toolkit_imports(path: Path) -> list[tuple[int, str, str | None]]:
    return source_imports(path.read_text(encoding="utf-8"))


def test_the_benchmarks_are_a_package():
    assert (BENCHMARKS / "__init__.py").is_file()
    assert len(RUNNABLE) >= 15


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_benchmarks_import_only_the_public_face(path):
    problems = []
    for line, module, name in toolkit_imports(path):
        problem = public_face_problem(module, name)
        if problem:
            problems.append(f"{path.name}:{line}: {problem}")
    assert not problems, "\n".join(problems)


def test_every_name_the_benchmarks_import_resolves():
    """The ``__all__`` entries the benchmarks rely on exist (lazy PEP 562 homes included)."""
    wanted = {(module, name) for path in FILES for _, module, name in toolkit_imports(path) if name is not None}
    missing = []
    for module, name in sorted(wanted):
        try:
            getattr(importlib.import_module(module), name)
        except ModuleNotFoundError as error:  # an optional extra (apache_beam, faiss, fastapi) not installed
            if (error.name or "").split(".")[0] in ("semmatch_tf", "benchmarks"):
                raise
        except AttributeError:
            missing.append(f"{module}.{name}")
    assert not missing


def test_no_public_name_turns_into_a_submodule():
    """Importing ``pkg.name`` binds the submodule on ``pkg``: a lazily exported name equal to a
    submodule's would then give the module, not the function (hence ``training.pretrain_mlm``)."""
    clashes = []
    for init in sorted((REPO / "semmatch_tf").rglob("__init__.py")):
        package = ".".join(init.parent.relative_to(REPO).parts)
        for name in importlib.import_module(package).__all__:
            if (init.parent / f"{name}.py").is_file() or (init.parent / name / "__init__.py").is_file():
                importlib.import_module(f"{package}.{name}")
                if isinstance(getattr(importlib.import_module(package), name), type(ast)):
                    clashes.append(f"{package}.{name}")
    assert not clashes


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_no_benchmark_touches_sys_path(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    uses = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "path"
            and isinstance(node.value, ast.Name) and node.value.id == "sys"]
    assert not uses, f"{path.name} uses sys.path at lines {uses}"


@pytest.mark.parametrize("path", RUNNABLE, ids=[p.name for p in RUNNABLE])
def test_each_benchmark_runs_only_under_a_main_guard(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guards = [node for node in tree.body if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)]
    assert guards, f"{path.name} has no `if __name__ == \"__main__\":`"
    calls = [ast.unparse(node) for node in tree.body if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)]
    calls = [call for call in calls if not call.startswith("os.environ.setdefault(")]  # defaults, not work
    assert not calls, f"{path.name} calls at module level: {calls}"


def test_the_benchmark_modules_import_without_running():
    results = BENCHMARKS / "results.json"
    before = results.stat().st_mtime_ns if results.exists() else None
    for path in IMPORTABLE:
        module = importlib.import_module(f"benchmarks.{path.stem}")
        assert module.__package__ == "benchmarks"
        if path in RUNNABLE:
            assert callable(getattr(module, "main", None)), f"{path.name} has no main()"
    assert (results.stat().st_mtime_ns if results.exists() else None) == before, "an import published records"


@pytest.mark.parametrize("argv", [["-m", "benchmarks.run_quality", "--help"],
                                  ["benchmarks/run_quality.py", "--help"]], ids=["module", "file"])
def test_a_benchmark_starts_as_a_module_and_as_a_file(argv):
    """The documented form is ``python -m benchmarks.run_x``; ``python benchmarks/run_x.py`` re-runs
    itself as that module."""
    done = subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout and "run_quality" in done.stdout
