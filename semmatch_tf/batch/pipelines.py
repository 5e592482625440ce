"""Beam pipelines: score (query, product) pairs, embed a catalogue, write index shards.

``score_batch``: records with ``query`` and ``product`` -> the cross-encoder export's
``serving_default`` -> the records plus ``score``, ``label`` and ``probabilities``.
``embed_batch``: records with ``product_id`` and ``title`` -> the bi-encoder export's
``embed_product`` -> the records plus ``embedding`` (files) and/or index shards (``index_dir``):
an index directory that ``semmatch-tf search --index`` and :func:`~semmatch_tf.retrieval.search.load_searcher`
load, its dense part a :class:`~semmatch_tf.retrieval.sharded.ShardedIndex` (one shard per
``crc32(product_id) % shards``, rows sorted by id; the queries are embedded by the export's
``embed_query``).

From the model on, records travel in chunks of ``batch_size`` (one Beam element per chunk, not per
record), and the model runs on its own thread while the pipeline reads the next chunks and writes
the last ones (:mod:`semmatch_tf.batch.handler`); every vector equals the in-process embedder's
bit for bit (``tests/test_beam.py``).

Input files are read by :mod:`semmatch_tf.batch.sources`. Both pipelines run on whatever runner
``pipeline_args`` name (without a runner flag, Beam's bundle-based direct runner: see
:func:`_options`; e.g.
``--runner=FlinkRunner --flink_master=host:8081``, ``--runner=SparkRunner``,
``--runner=DataflowRunner --project=... --region=... --temp_location=gs://...``). Files are read
and written with Beam's IO (local paths, ``gs://``, ``s3://``, ``hdfs://``); index shards are
written with local file APIs, so on a distributed runner ``index_dir`` must be a file system every
worker mounts, and the launching process too: it writes the index's manifest (``sharded.json``,
``index.json``) from the shard directories once the pipeline has finished. Doing that in the
pipeline took a global combine (about ten more transforms), whose set-up every run paid.

Examples:
    >>> from semmatch_tf.batch import BatchJob
    >>> BatchJob("serving/semmatch_bi/1", "catalogue.jsonl", "out/embeddings", output_format="parquet").output_format
    'parquet'
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import zlib
from pathlib import Path
from typing import Iterable

import numpy as np

from semmatch_tf.batch.sources import BatchInputError, read_chunks
from semmatch_tf.retrieval.index import EMBEDDINGS

FORMATS = ("jsonl", "parquet", "tfrecord")
EMBEDDED_COUNTER = ("semmatch_tf", "records_embedded")  # Beam metric: (namespace, name)
SUFFIXES = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
            ".tfrecord": "tfrecord", ".tfrecords": "tfrecord"}


@dataclasses.dataclass(frozen=True)
class BatchJob:
    """What a batch pipeline reads, runs and writes.

    Args:
        export_dir: the SavedModel version directory (``BASE/NAME/VERSION``).
        input: a file or glob (``data/part-*.parquet``); its format from ``input_format`` or the suffix.
        output: output file prefix (Beam writes ``PREFIX-00000-of-0000N.SUFFIX``), or None (embed: shards only).
        input_format / output_format: ``jsonl``, ``parquet`` or ``tfrecord`` (tf.train.Example of bytes features).
        batch_size: records per chunk: one model call each (padded to full row blocks) and one Beam element after it.
        output_shards: number of output files (0: the runner decides).
        pipeline_args: Beam pipeline flags (runner and its options).
    """

    export_dir: str
    input: str
    output: str | None
    input_format: str | None = None
    output_format: str = "jsonl"
    batch_size: int = 256
    output_shards: int = 0
    pipeline_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        fmt = self.input_format or SUFFIXES.get(Path(self.input.replace("*", "x")).suffix.lower())
        if fmt not in FORMATS:
            raise ValueError(f"{self.input}: unknown input format; name one of {FORMATS} (--input-format)")
        object.__setattr__(self, "input_format", fmt)
        if self.output_format not in FORMATS:
            raise ValueError(f"output format must be one of {FORMATS}, got {self.output_format!r}")
        if self.batch_size < 1 or self.output_shards < 0:
            raise ValueError("batch_size must be positive and output_shards not negative")


# -- writing ---------------------------------------------------------------------------------------------
def write_records(records, job: BatchJob, schema_fields: dict):
    """Write dict records to ``job.output`` in ``job.output_format``. ``schema_fields``: name -> arrow type."""
    import apache_beam as beam

    shards = {"num_shards": job.output_shards} if job.output_shards else {}
    if job.output_format == "parquet":
        import pyarrow as pa

        schema = pa.schema(list(schema_fields.items()))
        return (records | "Keep schema fields" >> beam.Map(lambda r: {k: r.get(k) for k in schema.names})
                | "Write parquet" >> beam.io.WriteToParquet(job.output, schema, file_name_suffix=".parquet",
                                                            **shards))
    if job.output_format == "tfrecord":
        return (records | "To examples" >> beam.Map(to_example)
                | "Write tfrecord" >> beam.io.WriteToTFRecord(job.output, file_name_suffix=".tfrecord", **shards))
    return (records | "To JSON lines" >> beam.Map(lambda r: json.dumps(r, ensure_ascii=False))
            | "Write jsonl" >> beam.io.WriteToText(job.output, file_name_suffix=".jsonl", **shards))


def to_example(record: dict) -> bytes:
    """A dict record as a serialised tf.train.Example (strings: bytes, floats: float lists)."""
    from tensorflow.core.example import example_pb2, feature_pb2

    features = {}
    for name, value in record.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        if all(isinstance(v, str) for v in values):
            features[name] = feature_pb2.Feature(bytes_list=feature_pb2.BytesList(value=[v.encode() for v in values]))
        elif all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            features[name] = feature_pb2.Feature(int64_list=feature_pb2.Int64List(value=[int(v) for v in values]))
        else:
            features[name] = feature_pb2.Feature(float_list=feature_pb2.FloatList(value=[float(v) for v in values]))
    return example_pb2.Example(features=feature_pb2.Features(feature=features)).SerializeToString()


# -- model outputs to records ---------------------------------------------------------------------------
def scored_records(result) -> Iterable[dict]:
    """A scored chunk's records, each plus ``score``, ``label`` and ``probabilities``."""
    outputs = result.inference
    for i, record in enumerate(result.example):
        label = outputs["label"][i]
        yield {**record, "score": float(outputs["scores"][i]),
               "label": label.decode("utf-8") if isinstance(label, bytes) else str(label),
               "probabilities": [float(p) for p in np.ravel(outputs["probabilities"][i])]}


def embedded_chunk(result) -> tuple[list, np.ndarray]:
    """An embedded chunk as ``(records, float32 vectors [len(records), dims])``: kept whole, so
    Beam handles one element per chunk rather than per record. Counts its records
    (:data:`EMBEDDED_COUNTER`, checked against the index by :func:`check_index_complete`)."""
    from apache_beam.metrics import Metrics

    records = list(result.example)
    Metrics.counter(*EMBEDDED_COUNTER).inc(len(records))
    return records, np.asarray(result.inference["embedding"], np.float32)


def listed_records(chunk: tuple[list, np.ndarray]) -> Iterable[dict]:
    """A chunk's records, each plus ``embedding`` as a list of floats (the float32 values exactly)."""
    records, vectors = chunk
    for record, vector in zip(records, vectors.tolist()):
        yield {**record, "embedding": vector}


# -- index shards ---------------------------------------------------------------------------------------
def shard_of(product_id: str, shards: int) -> int:
    """Stable across processes and runners (unlike ``hash``): crc32 of the UTF-8 id."""
    return zlib.crc32(str(product_id).encode("utf-8")) % shards


def shard_pieces(chunk: tuple[list, np.ndarray], shards: int, text_field: str) -> Iterable[tuple]:
    """A chunk split by shard: ``(shard, (product_ids, titles, vectors))`` for each shard it touches."""
    records, vectors = chunk
    ids = [str(record["product_id"]) for record in records]
    numbers = np.fromiter((shard_of(i, shards) for i in ids), np.int64, len(ids))
    for number in np.unique(numbers):
        rows = np.flatnonzero(numbers == number)
        yield int(number), ([ids[r] for r in rows], [records[r][text_field] for r in rows], vectors[rows])


def write_index_shard(item, directory: str, shards: int, meta: dict) -> None:
    """One shard directory from its pieces (rows sorted by id there); the launcher lists the shards
    afterwards (:func:`written_shards`)."""
    from semmatch_tf.retrieval.sharded import shard_name, write_shard
    import pandas as pd

    number, pieces = item
    pieces = list(pieces)
    vectors = np.concatenate([piece[2] for piece in pieces]).astype(np.float32, copy=False)
    catalogue = pd.DataFrame({"product_id": [i for piece in pieces for i in piece[0]],
                              "title": [t for piece in pieces for t in piece[1]]})
    write_shard(directory, shard_name(number, shards), vectors, catalogue, meta)


def written_shards(dense_dir: Path) -> list[dict]:
    """The manifest entries (name, count, dims) of the shard directories a finished pipeline wrote
    under ``dense_dir``, read from each shard's embeddings header (shards no record fell into are
    not written)."""
    entries = []
    for directory in sorted(dense_dir.glob("shard-*-of-*")):
        if directory.is_dir():
            rows, dims = np.load(directory / EMBEDDINGS, mmap_mode="r", allow_pickle=False).shape
            entries.append({"name": directory.name, "count": int(rows), "dims": int(dims)})
    return entries


def write_index_manifest(entries: Iterable[dict], index_dir: str, meta: dict) -> dict:
    """``dense/sharded.json`` and the index's ``index.json`` (parts: dense), written last."""
    from semmatch_tf.retrieval.index import write_json
    from semmatch_tf.retrieval.sharded import write_manifest

    entries = list(entries)
    if not entries:
        raise BatchInputError(f"{meta.get('input')}: no records to index")
    meta = {**meta, "dims": int(entries[0]["dims"])}
    write_manifest(Path(index_dir) / "dense", entries, meta)
    facts = {"catalogue": meta.get("input"), "count": sum(e["count"] for e in entries), "parts": ["dense"],
             "export_dir": meta["export_dir"], "dims": meta.get("dims"), "shards": len(entries)}
    write_json(Path(index_dir) / "index.json", facts)
    return facts


# -- the two pipelines ----------------------------------------------------------------------------------
LOCAL_RUNNER = "--runner=BundleBasedDirectRunner"
FN_API_FLAGS = ("--runner", "--direct_running_mode", "--direct_num_workers")  # flags that pick a runner


def _options(job: BatchJob):
    """Beam options from the job's flags. Without a runner flag: Beam's bundle-based direct runner
    (:data:`LOCAL_RUNNER`, one worker thread, which overlaps the model with reading and writing
    through :class:`~semmatch_tf.batch.handler.AwaitOutputs`).

    Why not the DirectRunner's default (the portable FnApiRunner): on 50k titles its set-up per run
    (bundle processors and a DoFn introspection for each of the pipeline's stages) made it 0.70-0.79x
    the in-process embedder against 0.77-0.85x (JSON lines, three benchmark runs of 9 rounds,
    ``benchmarks/NOTES.md``), and its multi-threaded mode lost a 256-record chunk in 3 of 33 runs
    (with a lock added where its buffers are created, it once handed a grouping step another step's
    records; :func:`check_index_complete` turns such a loss into an error). ``--runner=DirectRunner``
    (or any ``--direct_running_mode`` / ``--direct_num_workers``) still selects it.
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    flags = list(job.pipeline_args)
    if not any(flag.startswith(FN_API_FLAGS) for flag in flags):
        flags.insert(0, LOCAL_RUNNER)
    return PipelineOptions(flags)


def _inference(job: BatchJob, signature: str, inputs: dict):
    """Chunks of records (:func:`read_chunks`) -> ``RunInference``: one PredictionResult per chunk.

    Chunks rather than records flow on, because Beam's per-element cost at every later step was as
    large as the model's own time (see :mod:`semmatch_tf.batch.handler`).
    """
    import apache_beam as beam
    from apache_beam.ml.inference.base import RunInference

    from semmatch_tf.batch.handler import AwaitOutputs, SignatureModelHandler

    handler = SignatureModelHandler(job.export_dir, signature, inputs)

    @beam.ptransform_fn
    def chunked_inference(chunks):
        return (chunks | "RunInference" >> RunInference(handler)
                | "Await outputs" >> beam.ParDo(AwaitOutputs(depth=handler.model_threads + 1)))

    return chunked_inference()


def score_batch(job: BatchJob) -> None:
    """Score every (query, product) record with a cross-encoder export; see the module docstring."""
    import apache_beam as beam
    import pyarrow as pa

    if check_export(job.export_dir, "serving_default").get("kind") not in (None, "cross_encoder"):
        raise ValueError(f"{job.export_dir}: a bi-encoder export; score-batch needs a cross-encoder export")
    if job.output is None:
        raise ValueError("score-batch needs an output prefix")
    with cleaned_up_on_failure(job.output, None):
        with beam.Pipeline(options=_options(job)) as pipeline:
            chunks = read_chunks(pipeline, job.input, job.input_format, job.batch_size, ("query", "product"))
            scored = (chunks | "Score" >> _inference(job, "serving_default", {"query": "query", "product": "product"})
                      | "To records" >> beam.FlatMap(scored_records))
            write_records(scored, job, {"query": pa.string(), "product": pa.string(), "score": pa.float32(),
                                        "label": pa.string(), "probabilities": pa.list_(pa.float32())})


def embed_batch(job: BatchJob, *, index_dir: str | None = None, shards: int = 8, text_field: str = "title") -> None:
    """Embed every catalogue record with a bi-encoder export into files and/or index shards."""
    import apache_beam as beam
    import pyarrow as pa

    if job.output is None and index_dir is None:
        raise ValueError("embed-batch needs an output prefix, an index directory, or both")
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    check_export(job.export_dir, "embed_product")
    if index_dir is not None:
        prepare_index_dir(index_dir)
    meta = {"export_dir": str(Path(job.export_dir).resolve()), "input": job.input, "text_field": text_field,
            "built_by": "semmatch_tf.batch.embed_batch"}
    with cleaned_up_on_failure(job.output, index_dir):
        pipeline = beam.Pipeline(options=_options(job))
        chunks = read_chunks(pipeline, job.input, job.input_format, job.batch_size, ("product_id", text_field))
        embedded = (chunks | "Embed" >> _inference(job, "embed_product", {"text": text_field})
                    | "To chunks" >> beam.Map(embedded_chunk))
        if job.output is not None:
            write_records(embedded | "To records" >> beam.FlatMap(listed_records), job,
                          {"product_id": pa.string(), text_field: pa.string(), "embedding": pa.list_(pa.float32())})
        if index_dir is not None:
            dense = str(Path(index_dir) / "dense")
            (embedded
             | "Split by shard" >> beam.FlatMap(shard_pieces, shards, text_field)
             | "Group shards" >> beam.GroupByKey()
             | "Write shards" >> beam.Map(write_index_shard, dense, shards, {"export_dir": meta["export_dir"]}))
        result = pipeline.run()
        result.wait_until_finish()
        if index_dir is not None:
            write_index_manifest(written_shards(Path(index_dir) / "dense"), index_dir, meta)
            check_index_complete(result, index_dir)


def check_index_complete(result, index_dir: str) -> None:
    """Raise unless the index holds every record the model embedded (Beam's committed counter).

    A guard, not a fix: the DirectRunner's multi-threaded mode sometimes builds an index short of a
    chunk (see :func:`_options`), and a short index would otherwise pass silently. The caller
    removes the index on the error.
    """
    from apache_beam.metrics.metric import MetricsFilter

    query = MetricsFilter().with_namespace(EMBEDDED_COUNTER[0]).with_name(EMBEDDED_COUNTER[1])
    embedded = sum(counter.committed or 0 for counter in result.metrics().query(query)["counters"])
    indexed = json.loads((Path(index_dir) / "index.json").read_text(encoding="utf-8"))["count"]
    if embedded != indexed:
        raise RuntimeError(f"{index_dir}: the runner embedded {embedded} records but indexed {indexed}; "
                           "the index is removed: run again (without --direct_running_mode=multi_threading)")


@contextlib.contextmanager
def cleaned_up_on_failure(output: str | None, index_dir: str | None):
    """A failed pipeline leaves nothing half-written: Beam's ``beam-temp-*`` folder beside a local
    output prefix and the index directory this run created are removed (finished output files are
    only renamed into place by Beam at the end, so there are none)."""
    try:
        yield
    except BaseException:
        if output is not None and "://" not in output:
            prefix = Path(output)
            for temporary in prefix.parent.glob(f"beam-temp-{prefix.name}-*"):
                shutil.rmtree(temporary, ignore_errors=True)
        if index_dir is not None:
            shutil.rmtree(index_dir, ignore_errors=True)
        raise


def check_export(export_dir: str, signature: str) -> dict:
    """Refuse, before any pipeline starts, a directory that is not an export with ``signature``."""
    directory = Path(export_dir)
    if not (directory / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{directory}: not a SavedModel version directory (no saved_model.pb)")
    meta_path = directory / "assets.extra" / "semmatch_metadata.json"
    metadata = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    signatures = metadata.get("signatures") or {}
    if signatures and signature not in signatures:
        raise ValueError(f"{directory}: the export has no {signature!r} signature (it has {sorted(signatures)}); "
                         + ("score-batch needs a cross-encoder export" if signature == "serving_default"
                            else "embed-batch needs a bi-encoder export"))
    return metadata


def prepare_index_dir(index_dir: str) -> None:
    directory = Path(index_dir)
    if directory.exists():
        raise FileExistsError(f"{directory}: already exists; give a new --index-output")
    (directory / "dense").mkdir(parents=True, exist_ok=True)
