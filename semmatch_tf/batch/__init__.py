"""Batch scoring and catalogue embedding on Apache Beam (optional extra: ``pip install "semmatch-tf[beam]"``).

Pipelines read records from Parquet / JSONL / TFRecord files, run the exported SavedModel through
Beam's ``RunInference`` (raw strings in, scores or embeddings out) and write files, or the
embedding index shards that :mod:`semmatch_tf.retrieval.sharded` and ``semmatch-tf search`` load.
They run on the DirectRunner here and, with the runner's flags, on Flink, Spark or Dataflow.
"""

from semmatch_tf.batch.pipelines import FORMATS, BatchJob, embed_batch, score_batch

__all__ = ["FORMATS", "BatchJob", "embed_batch", "score_batch"]
