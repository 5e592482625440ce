"""Judged query-product pairs: schema, loaders, splits, tf.data pipelines, the demo catalogue."""

from semmatch_tf.data.demo import load_demo, load_demo_catalogue, load_demo_queries
from semmatch_tf.data.download import PUBLIC_DATASETS, download, download_public
from semmatch_tf.data.errors import DataFormatError
from semmatch_tf.data.loaders import FORMATS, LOADERS, load_dataset
from semmatch_tf.data.schema import COLUMNS, LabelScheme, PairDataset, build_frame
from semmatch_tf.data.splits import split_by_query, train_test_by_query

__all__ = ["COLUMNS", "DataFormatError", "FORMATS", "LOADERS", "LabelScheme", "PUBLIC_DATASETS", "PairDataset",
           "build_frame", "download", "download_public", "load_dataset", "load_demo", "load_demo_catalogue",
           "load_demo_queries", "split_by_query", "train_test_by_query"]
