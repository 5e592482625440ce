"""The public-face rule shared by the benchmark and notebook tests: a ``semmatch_tf`` import names
``semmatch_tf`` itself or a subpackage (a folder with an ``__init__.py``), and the imported name is
in that package's ``__all__`` — never a module path such as ``semmatch_tf.training.trainer``."""

from __future__ import annotations

import ast
import importlib

from conftest import REPO


def toolkit_imports(source: str) -> list[tuple[int, str, str | None]]:
    """(line, package, imported name or None for ``import package``) of every semmatch_tf import;
    IPython's ``%magic`` and ``!shell`` lines are blanked first, so a notebook cell parses."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    found = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, None) for a in node.names if a.name.split(".")[0] == "semmatch_tf"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "semmatch_tf":
            found += [(node.lineno, node.module, a.name) for a in node.names]
    return found


def is_package(module: str) -> bool:
    return (REPO.joinpath(*module.split(".")) / "__init__.py").is_file()


def public_face_problem(module: str, name: str | None) -> str | None:
    """What is wrong with ``from module import name`` under the rule, or None."""
    if not is_package(module):
        return f"{module} is a module path, not semmatch_tf or a subpackage"
    if name is not None and name not in importlib.import_module(module).__all__:
        return f"{name} is not in {module}.__all__"
    return None
