"""Batch scoring and catalogue embedding on Apache Beam (DirectRunner), from exported SavedModels.

Tiny models trained on the embedded demo in a module fixture (~1 min), exported, then run through
``semmatch_tf.batch`` and the ``score-batch`` / ``embed-batch`` commands: every output equals the
in-process model's, the index shards load into ``semmatch-tf search``, bad input is one line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, real_file

beam = pytest.importorskip("apache_beam", reason="apache-beam is not installed (pip install 'semmatch-tf[beam]')")

DATA = {"format": "demo", "split": [0.8, 0.1, 0.1], "seed": 13, "limit": 800}
TEXT = {"vocab_size": 800, "min_frequency": 1, "query_length": 8, "product_length": 16}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    from semmatch_tf.export import export_bi_encoder, export_model
    from semmatch_tf.runs import load_bi_encoder, load_run
    from semmatch_tf.training.config import RunConfig
    from semmatch_tf.training.trainer import train

    tmp = tmp_path_factory.mktemp("beam_exports")
    bi = RunConfig.from_dict({"data": DATA, "text": TEXT, "model": {
        "family": "bilstm_bi_encoder", "embedding_dim": 16, "lstm_units": 16, "pooling": "max", "dropout": 0.0,
        "bi_encoder": {"embedding_size": 16}},
        "training": {"epochs": 1, "batch_size": 16, "learning_rate": 0.01, "early_stopping_patience": None}})
    train(bi, tmp / "bi_run", verbose=0)
    cross = RunConfig.from_dict({"data": DATA, "text": TEXT, "model": {
        "family": "bilstm", "embedding_dim": 16, "lstm_units": 16, "hidden_units": 16},
        "training": {"compare_baseline": False,  # test_training.py tests it; it costs seconds
                     "epochs": 1, "batch_size": 32, "early_stopping_patience": None}})
    train(cross, tmp / "cross_run", verbose=0)
    return {"bi": export_bi_encoder(load_bi_encoder(tmp / "bi_run"), tmp / "serving", name="bi"),
            "cross": export_model(load_run(tmp / "cross_run"), tmp / "serving", name="cross"),
            "cross_run": tmp / "cross_run"}


@pytest.fixture(scope="module")
def catalogue() -> pd.DataFrame:
    from semmatch_tf.data.demo import load_demo_catalogue

    return load_demo_catalogue()[["product_id", "title", "language"]]


def write_jsonl(path: Path, frame: pd.DataFrame) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for record in frame.to_dict("records"):
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def read_outputs(prefix: Path, fmt: str) -> pd.DataFrame:
    from semmatch_tf.batch.sources import parse_example

    files = sorted(prefix.parent.glob(f"{prefix.name}-*-of-*.{fmt}"))
    assert files, f"no {fmt} output under {prefix}"
    if fmt == "parquet":
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    if fmt == "jsonl":
        return pd.DataFrame([json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines()])
    import tensorflow as tf

    return pd.DataFrame([parse_example(r.numpy()) for f in files for r in tf.data.TFRecordDataset(str(f))])


def in_process_embeddings(export_dir: Path, texts: list[str]) -> np.ndarray:
    from semmatch_tf.retrieval.sharded import ExportedEncoder

    return ExportedEncoder(export_dir).embed_products(texts)


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "semmatch_tf.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env=env)


def test_embed_batch_writes_the_in_process_vectors_and_index_shards_search_loads(exports, catalogue, tmp_path):
    from semmatch_tf.batch import BatchJob, embed_batch
    from semmatch_tf.retrieval.index import EmbeddingIndex
    from semmatch_tf.retrieval.search import load_searcher
    from semmatch_tf.retrieval.sharded import ShardedIndex

    source = write_jsonl(tmp_path / "catalogue.jsonl", catalogue)
    embed_batch(BatchJob(str(exports["bi"]), str(source), str(tmp_path / "emb"), output_format="parquet"),
                index_dir=str(tmp_path / "index"), shards=3)
    out = read_outputs(tmp_path / "emb", "parquet").set_index("product_id").loc[catalogue["product_id"]]
    assert list(out.columns) == ["title", "embedding"] and len(out) == len(catalogue)
    vectors = np.stack(out["embedding"].to_numpy()).astype(np.float32)
    expected = in_process_embeddings(exports["bi"], catalogue["title"].tolist())
    # the in-process embedder's last batch rounds the rows past its last full block of 8 differently
    # (float32); Beam pads every call to full blocks (bit-identical test on real titles below)
    np.testing.assert_allclose(vectors, expected, rtol=0, atol=1e-6)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    index = ShardedIndex.load(tmp_path / "index" / "dense")
    assert len(index.shards) == 3 and len(index) == len(catalogue) and sorted(index.ids) == sorted(catalogue.product_id)
    for shard in index.shards:
        assert list(shard.ids) == sorted(shard.ids), "rows sorted by id within a shard: reproducible"
    searcher = load_searcher(tmp_path / "index")
    results = searcher.search("apple charger", k=5)
    # the same products and scores as an exact search over one in-process index of the catalogue
    single = EmbeddingIndex(expected, catalogue)
    query = searcher.encoder.embed_queries(["apple charger"])
    reference = single.search(query, 5)[0]
    assert results["product_id"].tolist() == [catalogue["product_id"].iloc[i] for i in reference.indices]
    np.testing.assert_allclose(results["score"], reference.scores, atol=1e-5)
    meta = json.loads((tmp_path / "index" / "index.json").read_text())
    assert meta["count"] == len(catalogue) and meta["shards"] == 3 and meta["parts"] == ["dense"]


def test_embed_batch_vectors_are_bit_identical_to_the_in_process_embedder_on_real_titles(exports, tmp_path):
    """512 Home Depot titles in chunks of 100 (the last of 12): each signature call is padded to
    full blocks of rows, so every vector equals the in-process SavedModel's (batches of 256) bit for
    bit, in files and index alike, however Beam cuts the input."""
    from semmatch_tf.batch import BatchJob, embed_batch
    from semmatch_tf.retrieval.sharded import ShardedIndex

    frame = pd.read_csv(real_file("home-depot-search-relevance/train.csv"), encoding="latin-1",
                        usecols=["product_uid", "product_title"], nrows=3000).drop_duplicates("product_uid")
    catalogue = pd.DataFrame({"product_id": frame["product_uid"].astype(str), "title": frame["product_title"]}).head(512)
    assert len(catalogue) == 512
    source = write_jsonl(tmp_path / "titles.jsonl", catalogue)
    expected = in_process_embeddings(exports["bi"], catalogue["title"].tolist())
    embed_batch(BatchJob(str(exports["bi"]), str(source), str(tmp_path / "emb"), output_format="jsonl", batch_size=100),
                index_dir=str(tmp_path / "index"), shards=2)
    out = read_outputs(tmp_path / "emb", "jsonl").set_index("product_id").loc[catalogue["product_id"]]
    np.testing.assert_array_equal(np.stack(out["embedding"].to_numpy()).astype(np.float32), expected)
    index = ShardedIndex.load(tmp_path / "index" / "dense")
    rows = pd.Series(np.arange(len(index)), index=index.ids).loc[catalogue["product_id"]].to_numpy()
    np.testing.assert_array_equal(index.embeddings[rows], expected)


def test_an_index_short_of_the_embedded_records_is_an_error(tmp_path):
    from types import SimpleNamespace

    from semmatch_tf.batch.pipelines import check_index_complete

    (tmp_path / "index.json").write_text(json.dumps({"count": 5}))

    def result(embedded: int) -> SimpleNamespace:
        counters = [SimpleNamespace(committed=embedded)]
        return SimpleNamespace(metrics=lambda: SimpleNamespace(query=lambda _: {"counters": counters}))

    check_index_complete(result(5), str(tmp_path))
    with pytest.raises(RuntimeError, match="embedded 7 records but indexed 5"):
        check_index_complete(result(7), str(tmp_path))


def test_the_handler_takes_one_chunk_or_a_batch_of_chunks_alike():
    """One chunk per call (``RunInference`` then skips its ``BatchElements`` step and hands the
    handler the chunk itself) or two chunks per call (a batch of chunks): each chunk's result holds
    its own rows, and every call is padded to whole blocks of 16 rows."""
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    import tensorflow as tf

    from semmatch_tf.batch.handler import SignatureModelHandler, filled

    rows_per_call = []

    def signature(text):
        rows_per_call.append(int(text.shape[0]))
        return {"embedding": tf.cast(tf.strings.length(text), tf.float32)[:, None]}

    model = SimpleNamespace(calls=ThreadPoolExecutor(1), function=signature)
    chunks = [[{"title": "a" * n} for n in range(1, 6)], [{"title": "b" * n} for n in range(10, 13)]]
    single = SignatureModelHandler("unused", "embed_product", {"text": "title"})
    double = SignatureModelHandler("unused", "embed_product", {"text": "title"}, chunks_per_call=2)
    assert single.should_skip_batching() and not double.should_skip_batching()
    one_by_one = [filled(r) for chunk in chunks for r in single.run_inference(chunk, model)]
    together = [filled(r) for r in double.run_inference(chunks, model)]
    for results in (one_by_one, together):
        assert [r.example for r in results] == chunks
        assert [r.inference["embedding"][:, 0].tolist() for r in results] == [[1, 2, 3, 4, 5], [10, 11, 12]]
    assert rows_per_call == [16, 16, 16]
    assert single.get_num_bytes(chunks[0]) == 15 and double.get_num_bytes(chunks) == 15 + 33
    with pytest.raises(ValueError, match="at least 1"):
        SignatureModelHandler("unused", "embed_product", {"text": "title"}, chunks_per_call=0)


def test_json_lines_are_read_once_across_byte_ranges_and_a_dynamic_split(tmp_path):
    """The JSON-lines source cuts a file into byte ranges (as Beam's text source does): every line
    is read by exactly one range, whatever the range size, blank lines and a missing final newline
    included, and a range split while it is read leaves the lines past the cut to the other reader."""
    from semmatch_tf.batch.sources import JsonLinesChunks

    ids = [f"p{i}" for i in range(1000)]
    lines = [json.dumps({"product_id": i, "title": "caf\u00e9 " * (n % 7 + 1)}, ensure_ascii=False)
             for n, i in enumerate(ids)]
    path = tmp_path / "titles.jsonl"
    path.write_text("\n".join(lines[:500]) + "\n\n   \n" + "\n".join(lines[500:]), encoding="utf-8")
    source = JsonLinesChunks(str(path), 64)

    def read(single, start, stop) -> list[str]:
        tracker = single.get_range_tracker(start, stop)
        return [json.loads(line)["product_id"] for _, chunk in single.read(tracker) for _, line in chunk]

    for bundle_bytes in (1, 97, 4096, 10**9):
        bundles = list(source.split(bundle_bytes))
        read_ids = [i for b in bundles for i in read(b.source, b.start_position, b.stop_position)]
        assert read_ids == ids, bundle_bytes
    assert len(list(source.split(97))) > 100  # the small sizes really cut lines in the middle

    whole = next(iter(source.split(10**9)))
    tracker = whole.source.get_range_tracker(None, None)
    reader = whole.source.read(tracker)
    first = [json.loads(line)["product_id"] for _, line in next(reader)[1]]
    cut, _ = tracker.try_split(path.stat().st_size // 2)  # the runner takes the second half away
    rest = [json.loads(line)["product_id"] for _, chunk in reader for _, line in chunk]
    other = read(whole.source, cut, whole.stop_position)
    assert len(first) == 64 and first + rest + other == ids and len(other) > 400


def test_a_bad_json_line_is_named_by_file_and_byte_offset():
    from semmatch_tf.batch.sources import BatchInputError, parse_json_chunk

    good = b'{"product_id": "a", "title": "oak table"}'
    assert parse_json_chunk(("c.jsonl", [(0, good), (42, b'{"product_id": "b", "title": "lamp"}\r')]),
                            ("title",))[1]["title"] == "lamp"
    for bad, problem in [(b'{"product_id": "b", "title": 3}', "field 'title' is not a non-empty string (int)"),
                         (b'{"product_id": "b"', "a line is not JSON"), (b'[1, 2]', "a line is not a JSON object"),
                         (b'{"title": "x"}, {"title": "y"}', "a line is not JSON")]:
        with pytest.raises(BatchInputError, match=re.escape(f"c.jsonl (the line at byte 42): {problem}")):
            parse_json_chunk(("c.jsonl", [(0, good), (42, bad)]), ("title",))


def test_score_batch_equals_the_trained_run_in_every_file_format(exports, tmp_path):
    from semmatch_tf.batch import BatchJob, score_batch
    from semmatch_tf.batch.pipelines import to_example
    from semmatch_tf.runs import load_run

    pairs = pd.DataFrame({"query": ["apple charger", "苹果", "vela aromática", "drill bit"] * 5,
                          "product": ["Apple USB-C 20W Power Adapter", "红富士苹果 5斤", "Vela de vainilla 200 g",
                                      "ドリルビット セット 10本"] * 5})
    pairs["pair_id"] = [f"p{i}" for i in range(len(pairs))]
    expected = np.asarray(load_run(exports["cross_run"]).score(pairs["query"].tolist(), pairs["product"].tolist()))
    pairs.to_parquet(tmp_path / "pairs.parquet")
    write_jsonl(tmp_path / "pairs.jsonl", pairs)
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(tmp_path / "pairs.tfrecord")) as writer:
        for record in pairs.to_dict("records"):
            writer.write(to_example(record))
    for source, fmt in (("pairs.parquet", "jsonl"), ("pairs.jsonl", "parquet"), ("pairs.tfrecord", "tfrecord")):
        prefix = tmp_path / f"scores_{fmt}"
        score_batch(BatchJob(str(exports["cross"]), str(tmp_path / source), str(prefix), output_format=fmt))
        out = read_outputs(prefix, fmt)
        assert len(out) == len(pairs), (source, fmt)
        if "pair_id" in out.columns:  # jsonl and tfrecord keep every input field
            out = out.set_index("pair_id").loc[pairs["pair_id"]].reset_index()
        else:
            out = out.set_index(["query", "product"]).loc[pd.MultiIndex.from_frame(pairs[["query", "product"]])]
            out = out[~out.index.duplicated()].reindex(pd.MultiIndex.from_frame(pairs[["query", "product"]])).reset_index()
        np.testing.assert_allclose(out["score"].astype(float), expected, atol=1e-5, err_msg=f"{source} -> {fmt}")
        probabilities = np.stack([np.asarray(p, float) for p in out["probabilities"]])
        assert probabilities.shape == (len(pairs), 3) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
        assert set(out["label"]) <= {"irrelevant", "partial", "exact"}


def test_cli_embed_batch_then_search_and_bad_input_is_one_line(exports, catalogue, tmp_path):
    source = write_jsonl(tmp_path / "catalogue.jsonl", catalogue)
    result = cli("embed-batch", "--export", str(exports["bi"]), "--input", str(source), "--index-output",
                 str(tmp_path / "index"), "--shards", "2", "--", "--runner=DirectRunner")
    assert result.returncode == 0, result.stderr[-2000:]
    result = cli("search", "apple charger", "--index", str(tmp_path / "index"), "-k", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    assert len([l for l in result.stdout.splitlines() if l.strip()[:1].isdigit()]) == 3

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"product_id": "a", "title": "ok"}\n{"product_id": "b"}\n', encoding="utf-8")
    result = cli("embed-batch", "--export", str(exports["bi"]), "--input", str(bad), "--output",
                 str(tmp_path / "out"), "--index-output", str(tmp_path / "bad_index"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "field 'title' is missing" in result.stderr
    assert "product_id 'b'" in result.stderr
    assert not (tmp_path / "bad_index").exists() and not list(tmp_path.glob("beam-temp-*"))
    assert not list(tmp_path.glob("out-*")), "nothing half-written"
    result = cli("score-batch", "--export", str(exports["bi"]), "--input", str(source), "--output",
                 str(tmp_path / "s"))
    assert result.returncode == 2 and "needs a cross-encoder export" in result.stderr
    result = cli("embed-batch", "--export", str(tmp_path), "--input", str(source), "--output", str(tmp_path / "e"))
    assert result.returncode == 2 and "not a SavedModel version directory" in result.stderr

    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    result = cli("embed-batch", "--export", str(exports["bi"]), "--input", str(empty), "--index-output",
                 str(tmp_path / "empty_index"))
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "no records to index" in result.stderr and not (tmp_path / "empty_index").exists()
