"""Search refuses bad input with one clear message and never answers nonsense with confidence:
empty queries, bad depths, queries the encoder cannot read, corrupt indexes."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from semmatch_tf import cli
from semmatch_tf.models.bi_encoder import TwoTowerEncoder
from semmatch_tf.models.encoders import MaskedPooling
from semmatch_tf.retrieval import BM25Index, EmbeddingIndex, Searcher
from semmatch_tf.retrieval.search import build_index, search_index
from semmatch_tf.text import WordPieceTokenizer

CATALOGUE = pd.DataFrame({"product_id": ["p1", "p2", "p3"],
                          "title": ["ripe yellow bananas", "red apple phone case", "apple juice 1 litre"]})
VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "apple", "bananas", "case", "juice", "phone", "red",
              "ripe", "yellow", "litre", "1"]


def tiny_encoder() -> TwoTowerEncoder:
    """An untrained embedding + mean-pooling tower: enough to exercise the search path."""
    keras.utils.set_random_seed(3)
    ids = keras.Input(shape=(8,), dtype="int32")
    vectors = keras.layers.Embedding(len(VOCABULARY), 8, mask_zero=True)(ids)
    tower = keras.Model(ids, keras.layers.UnitNormalization()(MaskedPooling("mean")(vectors)))
    tokenizer = WordPieceTokenizer(VOCABULARY, sequence_length=8)
    return TwoTowerEncoder(tokenizer, tower, tokenizer, tower)


@pytest.fixture(scope="module")
def searcher() -> Searcher:
    encoder = tiny_encoder()
    index = EmbeddingIndex.build(encoder, CATALOGUE, progress=False)
    return Searcher(index, encoder, bm25=BM25Index.build(CATALOGUE), mode="hybrid")


@pytest.mark.parametrize("query", ["", "   ", "\t\n"])
def test_empty_query_is_refused(searcher, query):
    with pytest.raises(ValueError, match="empty query"):
        searcher.search(query)


@pytest.mark.parametrize("k", [0, -5, 2.5, True])
def test_bad_k_is_refused(searcher, k):
    with pytest.raises(ValueError, match="k must be a positive"):
        searcher.search("apple", k=k)


def test_query_outside_the_vocabulary_gets_no_results_not_confident_ones(searcher):
    """Ethiopic is wholly [UNK] for this vocabulary: its vector is that of unknowns, which still has a
    cosine with every product; neither stage may answer."""
    assert searcher.encoder.query_known_tokens(["ሰላም ለዓለም", "apple"]).tolist() == [0, 1]
    assert searcher.search("ሰላም ለዓለም").empty
    assert searcher.search("apple").product_id.tolist()  # a readable query still finds products
    dense_only = Searcher(searcher.index, searcher.encoder, mode="dense")
    assert dense_only.search("ሰላም ለዓለም").empty


def test_corrupt_index_is_refused_when_loaded(tmp_path):
    encoder = tiny_encoder()
    directory = EmbeddingIndex.build(encoder, CATALOGUE, progress=False).save(tmp_path / "dense")
    embeddings = np.load(directory / "embeddings.npy")
    embeddings[1] = np.nan
    np.save(directory / "embeddings.npy", embeddings)
    with pytest.raises(ValueError, match="not finite .*row 1"):
        EmbeddingIndex.load(directory)


def test_cli_rejects_bad_depths_before_loading_anything(tmp_path, capsys):
    build_index(None, CATALOGUE, tmp_path / "index")
    for args in (["-k", "-5"], ["--rerank", str(tmp_path / "missing"), "--candidates", "0"], ["-k", "0"]):
        assert cli.main(["search", "apple", "--index", str(tmp_path / "index"), *args]) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and "must be a positive" in error[0]
    with pytest.raises(ValueError, match="empty query"):
        search_index(tmp_path / "index", " ")
