"""The sharded catalogue index: exact search equals one index, ANN recall, persistence, corruption."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from semmatch_tf.retrieval.index import EmbeddingIndex
from semmatch_tf.retrieval.sharded import ShardedIndex, load_dense_index, merge_top_k


def clustered(count: int, dims: int = 32, clusters: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dims))
    vectors = centres[rng.integers(0, clusters, count)] + 0.35 * rng.normal(size=(count, dims))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def catalogue(count: int) -> pd.DataFrame:
    return pd.DataFrame({"product_id": [f"sku-{i:06d}" for i in range(count)], "title": [f"t{i}" for i in range(count)]})


def test_merge_top_k_orders_by_score_then_row():
    scores = np.array([[0.5, 0.9, 0.5, 0.1]], np.float32)
    rows = np.array([[7, 3, 2, 9]])
    merged_scores, merged_rows = merge_top_k(scores, rows, 3)
    assert merged_rows.tolist() == [[3, 2, 7]] and merged_scores[0].tolist() == pytest.approx([0.9, 0.5, 0.5])


def test_exact_sharded_search_equals_one_index_with_ties():
    vectors = clustered(3000)
    vectors[2500] = vectors[10]  # a tie across shards: the lower global row comes first, as in one index
    queries = clustered(40, seed=1)
    queries[0] = vectors[10]
    one = EmbeddingIndex(vectors, catalogue(3000))
    sharded = ShardedIndex.from_arrays(vectors, catalogue(3000), shards=7)
    assert [len(s) for s in sharded.shards] == [428, 429, 428, 429, 428, 429, 429]
    expected_scores, expected_rows = one.search_arrays(queries, 10)
    scores, rows = sharded.search_arrays(queries, 10)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-6)
    assert rows[0][:2].tolist() == [10, 2500]
    assert sharded.embeddings.base is None and all(s.embeddings.base is sharded.embeddings for s in sharded.shards), \
        "one copy of the vectors; shards are views"


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_search_recall_and_persistence(kind, tmp_path):
    pytest.importorskip("faiss")
    vectors = clustered(20000, dims=32, clusters=200)
    queries = clustered(200, dims=32, clusters=200, seed=3)
    sharded = ShardedIndex.from_arrays(vectors, catalogue(20000), shards=4).build_ann(kind, nprobe=16)
    _, exact_rows = sharded.search_arrays(queries, 10)
    _, ann_rows = sharded.search_arrays(queries, 10, exact=False)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(ann_rows, exact_rows)])
    assert recall >= 0.95, recall
    sharded.save(tmp_path / "dense")
    manifest = json.loads((tmp_path / "dense" / "sharded.json").read_text())
    assert manifest["count"] == 20000 and len(manifest["shards"]) == 4 and manifest["ann"]["kind"] == kind
    loaded = load_dense_index(tmp_path / "dense")
    assert isinstance(loaded, ShardedIndex) and loaded.has_ann
    np.testing.assert_array_equal(loaded.search_arrays(queries, 10, exact=False)[1], ann_rows)
    np.testing.assert_array_equal(loaded.search_arrays(queries, 10)[1], exact_rows)
    if kind == "ivf":  # more cells probed: at least as good
        loaded.set_search_depth(nprobe=64)
        deeper = loaded.search_arrays(queries, 10, exact=False)[1]
        assert np.mean([len(set(a) & set(e)) / 10 for a, e in zip(deeper, exact_rows)]) >= recall


def test_a_single_index_still_loads_and_a_broken_shard_is_named(tmp_path):
    vectors = clustered(300)
    EmbeddingIndex(vectors, catalogue(300)).save(tmp_path / "single")
    assert isinstance(load_dense_index(tmp_path / "single"), EmbeddingIndex)
    ShardedIndex.from_arrays(vectors, catalogue(300), shards=3).save(tmp_path / "dense")
    manifest_path = tmp_path / "dense" / "sharded.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["shards"][1]["count"] = 7
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="shard-00001-of-00003: 100 rows, sharded.json says 7"):
        ShardedIndex.load(tmp_path / "dense")
    manifest["shards"][1].update(count=100, name="shard-00009-of-00003")
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(FileNotFoundError, match="shard-00009-of-00003: shard missing"):
        ShardedIndex.load(tmp_path / "dense")
    manifest_path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        ShardedIndex.load(tmp_path / "dense")
    with pytest.raises(ValueError, match="duplicate"):
        ShardedIndex([EmbeddingIndex(vectors[:10], catalogue(10)), EmbeddingIndex(vectors[:10], catalogue(10))])
