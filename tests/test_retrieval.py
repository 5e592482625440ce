"""Catalogue search: exact dense search, index persistence, BM25, fusion, two-stage search."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from semmatch_tf.retrieval import (BM25Index, EmbeddingIndex, Searcher, format_results, reciprocal_rank_fusion,
                                   tokenize_words, top_k, weighted_score_fusion)
from semmatch_tf.retrieval.fusion import interpolate_scores
from semmatch_tf.retrieval.search import SearcherCache, build_index, load_searcher, rerank_candidates, search_index


def catalogue(n: int) -> pd.DataFrame:
    return pd.DataFrame({"product_id": [f"p{i}" for i in range(n)], "title": [f"title {i}" for i in range(n)],
                         "brand": ["acme"] * n})


def dyadic(rng: np.random.Generator, shape) -> np.ndarray:
    """Values in {-1, -0.5, 0, 0.5, 1}: every dot product is exact in float32, so ties are real ties
    in TF and NumPy alike, whatever the summation order."""
    return (rng.integers(-2, 3, size=shape) / 2).astype(np.float32)


class FakeEncoder:
    """Maps texts to fixed vectors (what a bi-encoder run would return)."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = {k: np.asarray(v, np.float32) for k, v in vectors.items()}

    def embed_queries(self, texts, **_):
        return np.stack([self.vectors[t] for t in texts])

    embed_products = embed_queries


class FakeReranker:
    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores
        self.calls: list[tuple[list[str], list[str]]] = []

    def score(self, queries, products):
        self.calls.append((list(queries), list(products)))
        return np.asarray([self.scores[p] for p in products])


# -- ranking primitives ---------------------------------------------------------------------------
def test_top_k_breaks_ties_by_lower_row_and_filters():
    scores = np.array([1.0, 3.0, 2.0, 3.0, 2.0, 0.0])
    np.testing.assert_array_equal(top_k(scores, 3), [1, 3, 2])
    np.testing.assert_array_equal(top_k(scores, 4), [1, 3, 2, 4])
    np.testing.assert_array_equal(top_k(scores, 10, above=0.0), [1, 3, 2, 4, 0])
    assert len(top_k(np.zeros(4), 3, above=0.0)) == 0


# -- dense index ----------------------------------------------------------------------------------
def test_exact_search_equals_numpy_brute_force_with_ties():
    rng = np.random.default_rng(0)
    embeddings = dyadic(rng, (40, 6))
    embeddings[20:30] = embeddings[0:10]  # duplicated rows: guaranteed equal scores
    queries = dyadic(rng, (9, 6))
    index = EmbeddingIndex(embeddings, catalogue(40))
    scores, rows = index.search_arrays(queries, k=12, batch_size=4)  # three query batches

    brute = queries @ embeddings.T
    for q in range(len(queries)):
        expected = np.lexsort((np.arange(40), -brute[q]))[:12]  # score desc, then lower row
        np.testing.assert_array_equal(rows[q], expected)
        np.testing.assert_array_equal(scores[q], brute[q][expected])
    assert any(len(set(s)) < len(s) for s in scores), "the data must contain ties to test them"
    rankings = index.search(queries, k=100)
    assert all(len(r) == 40 for r in rankings), "k is capped at the catalogue size"


def test_index_build_save_load_round_trip(tmp_path):
    frame = catalogue(5)
    encoder = FakeEncoder({f"title {i}": [i, 1.0, 0.0] for i in range(5)})
    index = EmbeddingIndex.build(encoder, frame, batch_size=2, progress=False, model_run_dir=tmp_path / "run")
    assert index.meta["dims"] == 3 and index.meta["count"] == 5 and index.meta["normaliser"] == "l2"
    target = tmp_path / "index"
    index.save(target)
    index.save(target)  # overwriting an existing index replaces it whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"], "no temporary or old copies left"
    loaded = EmbeddingIndex.load(target)
    np.testing.assert_array_equal(loaded.embeddings, index.embeddings)
    pd.testing.assert_frame_equal(loaded.catalogue, index.catalogue)
    assert loaded.meta == index.meta and loaded.meta["model_run_dir"].endswith("run")
    query = np.array([[1.0, 0.0, 0.0]], np.float32)
    np.testing.assert_array_equal(loaded.search_arrays(query, 3)[1], [[4, 3, 2]])


def test_index_rejects_bad_catalogues(tmp_path):
    with pytest.raises(ValueError, match="duplicate product_id"):
        EmbeddingIndex(np.zeros((2, 2)), pd.DataFrame({"product_id": ["a", "a"], "title": ["x", "y"]}))
    with pytest.raises(ValueError, match="product_id and title"):
        EmbeddingIndex(np.zeros((1, 2)), pd.DataFrame({"id": ["a"], "title": ["x"]}))
    with pytest.raises(FileNotFoundError, match="not an embedding index"):
        EmbeddingIndex.load(tmp_path)


def test_approximate_search_finds_the_exact_neighbours(tmp_path):
    pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = EmbeddingIndex(vectors, catalogue(300)).build_ann(m=16, ef_search=200)
    queries = vectors[:20] + 0.01
    exact = index.search_arrays(queries, 5)[1]
    approximate = index.search_arrays(queries, 5, exact=False)[1]
    assert np.mean([len(set(a) & set(e)) / 5 for a, e in zip(approximate, exact)]) >= 0.95
    index.save(tmp_path / "ann")
    reloaded = EmbeddingIndex.load(tmp_path / "ann")
    np.testing.assert_array_equal(reloaded.search_arrays(queries, 5, exact=False)[1], approximate)


# -- BM25 -----------------------------------------------------------------------------------------
TOY = pd.DataFrame({"product_id": ["a", "b", "c"],
                    "title": ["Red shoes", "red RED dress!", "Blue shoes, for kids"]})


def test_bm25_scores_match_hand_computation():
    # bm25s defaults: Lucene variant, k1 = 1.5, b = 0.75. Tokens (punctuation dropped, case folded):
    #   a = [red, shoes] (|a| = 2), b = [red, red, dress] (3), c = [blue, shoes, for, kids] (4)
    #   N = 3, avgdl = 9 / 3 = 3.
    # idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5)); red and shoes have df = 2:
    #   idf = ln(1 + 1.5 / 2.5) = ln(1.6) = 0.470004
    # term weight = idf * tf / (tf + k1 * (1 - b + b * |d| / avgdl)):
    #   a: red  1 / (1 + 1.5 * (0.25 + 0.75 * 2/3)) = 1 / 2.125 = 0.470588; shoes the same
    #      score("red shoes", a) = 2 * 0.470004 * 0.470588 = 0.442356
    #   b: red  2 / (2 + 1.5 * (0.25 + 0.75 * 3/3)) = 2 / 3.5 = 0.571429
    #      score("red shoes", b) = 0.470004 * 0.571429 = 0.268574
    #   c: shoes 1 / (1 + 1.5 * (0.25 + 0.75 * 4/3)) = 1 / 2.875 = 0.347826
    #      score("red shoes", c) = 0.470004 * 0.347826 = 0.163480
    # "kids": df = 1, idf = ln(1 + 2.5 / 1.5) = 0.980829; c: 0.980829 * 0.347826 = 0.341158
    index = BM25Index.build(TOY)
    idf = math.log(1.6)
    expected = [2 * idf / 2.125, idf * 2 / 3.5, idf / 2.875]
    np.testing.assert_allclose(index.scores("red shoes"), expected, rtol=1e-6)
    np.testing.assert_allclose(expected, [0.442356, 0.268574, 0.163480], atol=1e-6)
    red_shoes, kids, nothing = index.search(["red shoes", "KIDS", "zebra"], k=5)
    np.testing.assert_array_equal(red_shoes.indices, [0, 1, 2])
    np.testing.assert_array_equal(kids.indices, [2])
    np.testing.assert_allclose(kids.scores, [math.log(1 + 2.5 / 1.5) / 2.875], rtol=1e-6)
    assert len(nothing) == 0, "documents sharing no term are not returned"


def test_bm25_uses_our_word_split_and_round_trips(tmp_path):
    assert tokenize_words(["苹果手机 Café-Noir", "..."]) == [["苹", "果", "手", "机", "cafe", "noir"], []]
    frame = pd.DataFrame({"product_id": ["x", "y", "z"], "title": ["透明苹果手机壳", "新鲜苹果", "Café noir"]})
    index = BM25Index.build(frame)
    assert index.search(["苹果手机"], k=3)[0].indices.tolist() == [0, 1]
    assert index.search(["CAFE"], k=3)[0].indices.tolist() == [2]
    index.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    np.testing.assert_array_equal(loaded.scores("苹果 cafe"), index.scores("苹果 cafe"))
    assert loaded.ids.tolist() == ["x", "y", "z"] and loaded.meta["k1"] == 1.5


# -- fusion ---------------------------------------------------------------------------------------
def test_reciprocal_rank_fusion_by_hand():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a", "d"]])
    # a: 1/61 + 1/62, c: 1/63 + 1/61, b: 1/62, d: 1/63
    assert [key for key, _ in fused] == ["a", "c", "b", "d"]
    np.testing.assert_allclose([s for _, s in fused], [1 / 61 + 1 / 62, 1 / 63 + 1 / 61, 1 / 62, 1 / 63])
    # equal scores: the first list's order wins (x is first in list 0)
    assert [k for k, _ in reciprocal_rank_fusion([["x"], ["y"]])] == ["x", "y"]
    weighted = reciprocal_rank_fusion([["a"], ["b"]], k=0, weights=[1.0, 3.0])
    assert weighted == [("b", 3.0), ("a", 1.0)]


def test_weighted_score_fusion_by_hand():
    bm25 = [("a", 3.0), ("b", 2.0), ("c", 1.0)]  # min-max: a 1, b 0.5, c 0
    dense = [("c", 10.0), ("d", 5.0)]  # c 1, d 0
    equal = weighted_score_fusion([bm25, dense])
    assert equal == [("a", 1.0), ("c", 1.0), ("b", 0.5), ("d", 0.0)]  # a/c tie: first list first
    skewed = weighted_score_fusion([bm25, dense], weights=[0.3, 0.7])
    assert [k for k, _ in skewed] == ["c", "a", "b", "d"]
    np.testing.assert_allclose([s for _, s in skewed], [0.7, 0.3, 0.15, 0.0])
    assert weighted_score_fusion([[("x", 2.0), ("y", 2.0)]]) == [("x", 1.0), ("y", 1.0)]



def test_interpolate_scores_by_hand():
    rerank, stage = [4.0, 2.0, 0.0], [0.0, 10.0, 5.0]  # min-max: 1, .5, 0 and 0, 1, .5
    np.testing.assert_allclose(interpolate_scores(rerank, stage, 0.0), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(interpolate_scores(rerank, stage, 1.0), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(interpolate_scores(rerank, stage, 0.25), [0.75, 0.625, 0.125])
    np.testing.assert_allclose(interpolate_scores([3.0, 3.0], [1.0, 2.0], 0.5), [0.5, 1.0])  # equal -> 1
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        interpolate_scores(rerank, stage, 1.5)
    with pytest.raises(ValueError, match="finite"):
        interpolate_scores([1.0, float("nan")], [0.0, 1.0], 0.5)


# -- two-stage search -----------------------------------------------------------------------------
PRODUCTS = pd.DataFrame({"product_id": ["p1", "p2", "p3", "p4"],
                         "title": ["red running shoes", "blue running shoes", "red wool hat", "green garden hose"]})
VECTORS = {"red running shoes": [0.6, 0.8], "blue running shoes": [0.0, 1.0], "red wool hat": [1.0, 0.0],
           "green garden hose": [0.8, 0.6], "red shoes": [1.0, 0.0]}


@pytest.fixture(scope="module")
def toy_parts():
    encoder = FakeEncoder(VECTORS)
    return EmbeddingIndex.build(encoder, PRODUCTS, progress=False), encoder, BM25Index.build(PRODUCTS)


def test_dense_bm25_and_hybrid_orders(toy_parts):
    index, encoder, bm25 = toy_parts
    dense = Searcher(index, encoder).search("red shoes", k=4)
    assert dense["product_id"].tolist() == ["p3", "p4", "p1", "p2"]  # cosines 1, .8, .6, 0
    assert dense["rank"].tolist() == [1, 2, 3, 4] and dense["title"].iloc[0] == "red wool hat"
    lexical = Searcher(bm25=bm25, mode="bm25").search("red shoes", k=4)
    assert lexical["product_id"].tolist() == ["p1", "p2", "p3"]  # p2/p3 tie: lower row first; p4 no match
    hybrid = Searcher(index, encoder, bm25=bm25, mode="hybrid").search("red shoes", k=4)
    # RRF: p3 1/61 + 1/63 = p1 1/63 + 1/61 (tie: dense list first), p2 1/64 + 1/62, p4 1/62
    assert hybrid["product_id"].tolist() == ["p3", "p1", "p2", "p4"]
    np.testing.assert_allclose(hybrid["score"], [1 / 61 + 1 / 63] * 2 + [1 / 64 + 1 / 62, 1 / 62])
    np.testing.assert_allclose(hybrid["dense_score"], [1.0, 0.6, 0.0, 0.8], atol=1e-6)
    assert hybrid["bm25_score"].iloc[3] == 0.0, "stage scores are filled for every fused candidate"


def test_reranking_reorders_the_candidates(toy_parts):
    index, encoder, bm25 = toy_parts
    reranker = FakeReranker({"red running shoes": 0.9, "blue running shoes": 0.1, "red wool hat": 0.5,
                             "green garden hose": 0.95})
    searcher = Searcher(index, encoder, bm25=bm25, reranker=reranker, mode="hybrid")
    results = searcher.search("red shoes", k=3, candidates=4)
    assert results["product_id"].tolist() == ["p4", "p1", "p3"]
    np.testing.assert_allclose(results["score"], [0.95, 0.9, 0.5])
    assert reranker.calls[-1][0] == ["red shoes"] * 4, "every candidate is re-ranked"
    results = searcher.search("red shoes", k=2, candidates=2)  # only the top-2 fused (p3, p1) are re-ranked
    assert results["product_id"].tolist() == ["p1", "p3"], "p4 (0.95) was not a candidate"
    table = format_results(results)
    assert table.splitlines()[0].split() == ["rank", "score", "dense", "bm25", "fused", "rerank", "product_id",
                                             "title"]
    assert "red running shoes" in table


def test_searcher_checks_its_parts(toy_parts):
    index, encoder, _ = toy_parts
    with pytest.raises(ValueError, match="BM25"):
        Searcher(index, encoder, mode="hybrid")
    with pytest.raises(ValueError, match="mode"):
        Searcher(index, encoder, mode="semantic")


def test_bm25_only_index_of_the_demo_catalogue(tmp_path):
    meta = build_index(None, "demo", tmp_path / "index", progress=False)
    assert meta["parts"] == ["bm25"] and meta["count"] > 100
    results = search_index(tmp_path / "index", "nike hoodie", k=3)
    assert len(results) == 3 and "nike" in results["title"].iloc[0].lower()
    assert format_results(results.iloc[0:0]) == "(no results)"


def test_searcher_cache_is_held_by_the_caller(tmp_path):
    build_index(None, "demo", tmp_path / "index", progress=False)
    assert load_searcher(tmp_path / "index") is not load_searcher(tmp_path / "index"), "no hidden module cache"
    cache = SearcherCache()
    searcher = cache.get(tmp_path / "index")
    assert cache.get(tmp_path / "index") is searcher and cache.get(str(tmp_path / "index")) is searcher
    assert cache.get(tmp_path / "index", mode="bm25") is not searcher and len(cache) == 2, "mode is part of the key"
    cached = search_index(tmp_path / "index", "nike hoodie", k=3, cache=cache)
    assert len(cache) == 2, "search_index reuses the cached searcher"
    pd.testing.assert_frame_equal(cached, search_index(tmp_path / "index", "nike hoodie", k=3))
    build_index(None, "demo", tmp_path / "index", progress=False)  # a rebuilt index is a new key
    assert cache.get(tmp_path / "index") is not searcher and len(cache) == 3
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(FileNotFoundError, match="index.json"):
        cache.get(tmp_path)


def test_reranking_many_queries_in_one_call_and_the_stage1_tail(toy_parts):
    index, encoder, bm25 = toy_parts
    reranker = FakeReranker({"red running shoes": 0.9, "blue running shoes": 0.1, "red wool hat": 0.5,
                             "green garden hose": 0.95})
    searcher = Searcher(index, encoder, bm25=bm25, reranker=reranker, mode="hybrid")
    first, second = searcher.search_many(["red shoes", "red shoes"], k=4, candidates=2)
    assert len(reranker.calls) == 1 and len(reranker.calls[0][0]) == 4, "one re-ranker call for both queries"
    # fused order p3, p1, p2, p4: the top 2 re-ranked (p1 0.9 > p3 0.5), then p2, p4 in fused order
    assert first["product_id"].tolist() == second["product_id"].tolist() == ["p1", "p3", "p2", "p4"]
    assert first["score"].iloc[:2].tolist() == [0.9, 0.5] and first["score"].iloc[2:].isna().all()
    assert format_results(first).splitlines()[-1].split()[1] == "-"


def test_stage_weight_blends_the_first_stage_into_the_reranking(toy_parts):
    index, encoder, bm25 = toy_parts
    scores = {"red running shoes": 0.9, "blue running shoes": 0.1, "red wool hat": 0.5, "green garden hose": 0.95}
    # fused (RRF) order p3, p1, p2, p4 with p3 = p1 = 1/61 + 1/63, p2 = 1/64 + 1/62, p4 = 1/62
    fused = np.array([1 / 61 + 1 / 63, 1 / 61 + 1 / 63, 1 / 64 + 1 / 62, 1 / 62])
    rerank = np.array([0.5, 0.9, 0.1, 0.95])
    norm = lambda x: (x - x.min()) / (x.max() - x.min())  # noqa: E731
    expected = 0.5 * norm(rerank) + 0.5 * norm(fused)  # p3 .735, p1 .971, p2 .484, p4 .5
    orders = {}
    for weight in (0.0, 0.5, 1.0):
        searcher = Searcher(index, encoder, bm25=bm25, reranker=FakeReranker(scores), mode="hybrid",
                            stage_weight=weight)
        results = searcher.search("red shoes", k=4, candidates=4)
        orders[weight] = results["product_id"].tolist()
        assert dict(zip(results["product_id"], results["rerank_score"])) == \
            {"p3": 0.5, "p1": 0.9, "p2": 0.1, "p4": 0.95}, "rerank_score stays the re-ranker's own score"
        if weight == 0.5:
            np.testing.assert_allclose(results["score"], sorted(expected, reverse=True))
    assert orders[0.0] == ["p4", "p1", "p3", "p2"], "the re-ranker alone"
    assert orders[0.5] == ["p1", "p3", "p4", "p2"], "p4's lone re-ranker win is tempered by its last fused rank"
    assert orders[1.0] == ["p3", "p1", "p2", "p4"], "weight 1 keeps the stage-1 order (ties included)"
    with pytest.raises(ValueError, match="stage_weight"):
        Searcher(index, encoder, bm25=bm25, mode="hybrid", stage_weight=-0.1)


def test_rerank_candidates_scores_once_and_tries_depths(toy_parts):
    index, encoder, bm25 = toy_parts
    reranker = FakeReranker({"red running shoes": 0.9, "blue running shoes": 0.1, "red wool hat": 0.5,
                             "green garden hose": 0.95})
    searcher = Searcher(index, encoder, bm25=bm25, reranker=reranker, mode="hybrid")
    frames = searcher.candidates(["red shoes"], 4)
    (scores,) = searcher.rerank_scores(["red shoes"], frames, 4)
    assert len(reranker.calls) == 1
    shallow = rerank_candidates(frames[0], scores[:2], stage_column=searcher.stage_column)
    assert shallow["product_id"].tolist() == ["p1", "p3", "p2", "p4"] and shallow["score"].iloc[2:].isna().all()
    deep = rerank_candidates(frames[0], scores, stage_column=searcher.stage_column)
    pd.testing.assert_frame_equal(deep.reset_index(drop=True),
                                  searcher.search_many(["red shoes"], k=4, candidates=4)[0]
                                  .drop(columns=["rank", "title"])[deep.columns])
    with pytest.raises(ValueError, match="3 re-ranker scores for 2"):
        rerank_candidates(frames[0].head(2), np.zeros(3), stage_column="fused_score")
