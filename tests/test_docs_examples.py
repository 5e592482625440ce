"""The ``Examples:`` in the public modules' docstrings run as written (doctest), and every name of
the public face documents its arguments, its result and an example (so the rule cannot rot)."""

from __future__ import annotations

import doctest
import importlib
import inspect
import re

import pytest

from conftest import REPO

#: Modules whose docstring examples are runnable on the CPU in seconds (heavier ones mark theirs
#: ``# doctest: +SKIP`` and are exercised by tests/test_tasks.py instead).
MODULES = ["semmatch_tf", "semmatch_tf.models.registry", "semmatch_tf.losses", "semmatch_tf.tasks",
           "semmatch_tf.explain.integrated_gradients", "semmatch_tf.explain.spans", "semmatch_tf.explain.terminal",
           "semmatch_tf.serve.service", "semmatch_tf.compute", "semmatch_tf.training.hparams",
           "semmatch_tf.training.tensorboard_logs", "semmatch_tf.evaluation.ranking", "semmatch_tf.cards",
           "semmatch_tf.query.error_model", "semmatch_tf.quiet", "semmatch_tf.ensemble.pair_features",
           "semmatch_tf.ensemble.stacking", "semmatch_tf.ensemble.baseline", "semmatch_tf.models.tfidf.layer",
           # the homes of semmatch_tf.__all__ (training.trainer's example trains, so it is skipped)
           "semmatch_tf.tasks.cross_encoder", "semmatch_tf.tasks.bi_encoder", "semmatch_tf.training.config_files",
           "semmatch_tf.training.config", "semmatch_tf.data.loaders", "semmatch_tf.data.demo",
           "semmatch_tf.data.splits", "semmatch_tf.data.schema", "semmatch_tf.runs",
           "semmatch_tf.retrieval.index_directory", "semmatch_tf.retrieval.search", "semmatch_tf.export.savedmodel",
           "semmatch_tf.export.check"]
SECTION = re.compile(r"^\s*(Args|Returns|Raises|Examples?|Attributes|Yields|Notes?):\s*$")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, monkeypatch):
    monkeypatch.chdir(REPO)  # examples name configs/ relative to the repository
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
    assert result.attempted > 0 or name == "semmatch_tf.tasks", f"{name} has no runnable example"


def public_face() -> list[tuple[str, object]]:
    """Every name of ``semmatch_tf.__all__`` (bar ``__version__``) and every public method and
    property of the two tasks, with a dotted name for the failure message."""
    import semmatch_tf

    names = [(name, getattr(semmatch_tf, name)) for name in semmatch_tf.__all__ if name != "__version__"]
    for task in (semmatch_tf.CrossEncoder, semmatch_tf.BiEncoder):
        names += [(f"{task.__name__}.{name}", getattr(task, name) if not isinstance(member, property) else member)
                  for name, member in vars(task).items() if not name.startswith("_")]
    return names


def sections(doc: str) -> dict[str, str]:
    """A Google-style docstring's sections (``Args``, ``Returns``, ``Examples``...) -> their text."""
    found: dict[str, list[str]] = {}
    current = None
    for line in doc.splitlines():
        match = SECTION.match(line)
        if match:
            current = found.setdefault(match.group(1), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in found.items()}


def documentation_gaps(obj) -> list[str]:
    """What ``obj``'s docstring lacks: an ``Args:`` naming each parameter, a ``Returns:`` when it
    returns something, an ``Examples:`` with at least one ``>>>`` line."""
    doc = inspect.getdoc(obj) or ""
    if isinstance(obj, property):
        return [] if doc.strip() else ["a docstring"]
    found = sections(doc)
    signature = inspect.signature(obj)
    parameters = [p.name for p in signature.parameters.values() if p.name not in ("self", "cls")]
    gaps = [f"Args entry for {name!r}" for name in parameters
            if not re.search(rf"\b{name}\b", found.get("Args", ""))]
    returns = signature.return_annotation
    if not inspect.isclass(obj) and returns not in (None, "None") and "Returns" not in found:
        gaps.append("a Returns: block")
    if ">>>" not in found.get("Examples", ""):
        gaps.append("an Examples: block with a >>> example")
    return gaps


def test_the_public_face_documents_args_returns_and_examples():
    gaps = {name: missing for name, obj in public_face() if (missing := documentation_gaps(obj))}
    assert not gaps, gaps


def test_the_docstring_rule_sees_a_gap():
    def undocumented(text: str) -> str:
        """Says nothing of its argument or result."""
        return text

    assert documentation_gaps(undocumented) == ["Args entry for 'text'", "a Returns: block",
                                                "an Examples: block with a >>> example"]
