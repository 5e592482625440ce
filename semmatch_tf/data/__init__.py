"""Judged query-product pairs: schema, loaders, splits, tf.data pipelines, the demo catalogue.

The ``tf.data`` pipeline names (:class:`PipelineOptions`, :func:`make_dataset`, :func:`targets_of`)
are loaded on first use (PEP 562), so ``import semmatch_tf.data`` does not import TensorFlow.
"""

import importlib

from semmatch_tf.data.demo import load_demo, load_demo_catalogue, load_demo_queries
from semmatch_tf.data.download import PUBLIC_DATASETS, download, download_public
from semmatch_tf.data.errors import DataFormatError
from semmatch_tf.data.loaders import FORMATS, LOADERS, load_dataset
from semmatch_tf.data.schema import COLUMNS, LabelScheme, PairDataset, build_frame
from semmatch_tf.data.splits import split_by_query, train_test_by_query

_PIPELINE = ("PipelineOptions", "make_dataset", "targets_of")

__all__ = ["COLUMNS", "DataFormatError", "FORMATS", "LOADERS", "LabelScheme", "PUBLIC_DATASETS", "PairDataset",
           "PipelineOptions", "build_frame", "download", "download_public", "load_dataset", "load_demo",
           "load_demo_catalogue", "load_demo_queries", "make_dataset", "split_by_query", "targets_of",
           "train_test_by_query"]


def __getattr__(name: str):
    if name in _PIPELINE:
        return getattr(importlib.import_module("semmatch_tf.data.pipeline"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
