"""semmatch-tf: Keras/TensorFlow semantic matching for e-commerce search.

The public face: everything a search team needs, importable from the package itself. Names load on
first use (PEP 562), so ``import semmatch_tf`` does not start TensorFlow.

* configs and data: :func:`load_config`, :func:`load_dataset`, :func:`load_demo`, :func:`split_by_query`
* models: :class:`CrossEncoder`, :class:`BiEncoder` (``fit`` / ``save`` / ``from_preset`` / ``load`` /
  ``predict`` / ``rank`` / ``encode`` / ``evaluate`` / ``export``), and :func:`train`,
  :func:`load_run` underneath them
* search: :func:`build_index`, :func:`load_searcher`, :class:`Searcher`
* shipping: :func:`export_model`, :func:`export_bi_encoder`, :func:`check_export`
* quiet start: :func:`import_tensorflow` (TensorFlow without its C++ start-up lines)

Examples:

>>> import semmatch_tf
>>> semmatch_tf.load_config("configs/lcqmc_bilstm.yaml").model.family
'bilstm'
>>> len(semmatch_tf.load_demo()) > 1000
True
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_HOMES = {
    "load_config": "semmatch_tf.training.config_files",
    "RunConfig": "semmatch_tf.training.config",
    "load_dataset": "semmatch_tf.data.loaders",
    "load_demo": "semmatch_tf.data.demo",
    "split_by_query": "semmatch_tf.data.splits",
    "PairDataset": "semmatch_tf.data.schema",
    "CrossEncoder": "semmatch_tf.tasks",
    "BiEncoder": "semmatch_tf.tasks",
    "train": "semmatch_tf.training.trainer",
    "load_run": "semmatch_tf.runs",
    "build_index": "semmatch_tf.retrieval.index_directory",
    "load_searcher": "semmatch_tf.retrieval.index_directory",
    "Searcher": "semmatch_tf.retrieval.search",
    "export_model": "semmatch_tf.export.savedmodel",
    "export_bi_encoder": "semmatch_tf.export.savedmodel",
    "check_export": "semmatch_tf.export.check",
    "import_tensorflow": "semmatch_tf.quiet",
}

__all__ = ["__version__", *sorted(_HOMES)]


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
