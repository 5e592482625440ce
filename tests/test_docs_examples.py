"""The ``Examples:`` in the public modules' docstrings run as written (doctest)."""

from __future__ import annotations

import doctest
import importlib

import pytest

from conftest import REPO

#: Modules whose docstring examples are runnable on the CPU in seconds (heavier ones mark theirs
#: ``# doctest: +SKIP`` and are exercised by tests/test_tasks.py instead).
MODULES = ["semmatch_tf", "semmatch_tf.models.registry", "semmatch_tf.losses", "semmatch_tf.tasks",
           "semmatch_tf.explain.integrated_gradients", "semmatch_tf.explain.spans", "semmatch_tf.explain.terminal",
           "semmatch_tf.serve.service", "semmatch_tf.compute", "semmatch_tf.training.hparams",
           "semmatch_tf.training.tensorboard_logs", "semmatch_tf.evaluation.ranking", "semmatch_tf.cards",
           "semmatch_tf.query.error_model", "semmatch_tf.quiet"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, monkeypatch):
    monkeypatch.chdir(REPO)  # examples name configs/ relative to the repository
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
    assert result.attempted > 0 or name == "semmatch_tf.tasks", f"{name} has no runnable example"
