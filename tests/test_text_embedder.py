"""TextEmbedder input handling: what is embedded is the text given, or a clear error.

Regression for an OperatorNotAllowedInGraphError ("Iterating over a symbolic tf.Tensor") raised
from ``TextEmbedder.__call__``, whose ``[str(t) for t in texts]`` also embedded the *repr* of bytes
("b'red shoes'") and of eager tensors, and the text "nan" for a missing value.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from semmatch_tf.models.bi_encoder import TwoTowerEncoder, build_towers, text_list
from semmatch_tf.text import learn_vocabulary
from semmatch_tf.training import contrastive
from semmatch_tf.training.config import RunConfig

TEXTS = ["red shoes", "blue hat", "green bag", "café noir 2"]


@pytest.fixture(scope="module")
def encoder() -> TwoTowerEncoder:
    config = RunConfig.from_dict({
        "model": {"family": "bilstm_bi_encoder", "embedding_dim": 8, "lstm_units": 8, "pooling": "max",
                  "dropout": 0.0, "bi_encoder": {"embedding_size": 8, "shared_towers": False}},
        "text": {"vocab_size": 100, "min_frequency": 1, "query_length": 6, "product_length": 8}})
    vocabulary = learn_vocabulary(TEXTS, vocab_size=100, min_frequency=1)
    return TwoTowerEncoder.from_towers(build_towers(config.model, config.text, vocabulary=vocabulary))


def test_text_list_normalises_and_refuses():
    assert text_list(["a", b"caf\xc3\xa9", np.str_("b"), np.bytes_(b"c"), 12]) == ["a", "café", "b", "c", "12"]
    assert text_list(np.array([b"x", b"y"])) == ["x", "y"] and text_list(tf.constant(["x", "é"])) == ["x", "é"]
    assert text_list(()) == []
    for single in ("red shoes", b"red shoes", tf.constant("red shoes")):
        with pytest.raises(TypeError, match="single"):
            text_list(single)
    for missing in (None, float("nan"), np.float32("nan")):
        with pytest.raises(ValueError, match="text 1 is missing"):
            text_list(["ok", missing])
    with pytest.raises(ValueError, match="1-D"):
        text_list(np.array([["a", "b"]]))


def test_every_form_of_the_same_texts_embeds_alike(encoder):
    expected = encoder.embed_queries(TEXTS, batch_size=3)  # a full batch and a partial one
    assert expected.shape == (4, 8)
    encoded = [t.encode("utf-8") for t in TEXTS]
    for texts in (np.array(TEXTS), encoded, np.array(encoded, dtype=object), tf.constant(TEXTS), tuple(TEXTS)):
        np.testing.assert_allclose(encoder.embed_queries(texts, batch_size=3), expected, rtol=1e-5, atol=1e-6)
    different = encoder.embed_queries([repr(t) for t in encoded])  # what str(bytes) used to embed
    assert not np.allclose(different, expected, atol=1e-3)


def test_inside_a_tf_function_use_embed_tensor(encoder):
    @tf.function
    def eager_api(texts):
        return encoder.embed_queries(texts)

    with pytest.raises(TypeError, match="embed_tensor"):
        eager_api(tf.constant(TEXTS))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def graph_api(texts):
        return encoder.product_embedder.embed_tensor(texts)

    np.testing.assert_allclose(graph_api(tf.constant(TEXTS)).numpy(), encoder.embed_products(TEXTS),
                               rtol=1e-5, atol=1e-6)


def test_pair_cosines_of_repeated_texts_and_a_partial_batch(encoder):
    queries = ["red shoes", "blue hat", "red shoes", "green bag", "blue hat"]
    products = ["green bag", "red shoes", "café noir 2", "green bag", "blue hat"]
    cosines = contrastive.pair_cosines(encoder, queries, products, batch_size=2)
    q, p = encoder.embed_queries(queries), encoder.embed_products(products)
    np.testing.assert_allclose(cosines, np.sum(q * p, axis=1), rtol=1e-5, atol=1e-6)
    assert cosines.dtype == np.float64 and np.all(np.abs(cosines) <= 1 + 1e-6)
    with pytest.raises(ValueError, match="missing"):
        contrastive.pair_cosines(encoder, ["red shoes", None], ["blue hat", "green bag"])
    with pytest.raises(ValueError, match="aligned"):
        contrastive.pair_cosines(encoder, ["red shoes"], ["blue hat", "green bag"])
    assert contrastive.pair_cosines(encoder, [], []).shape == (0,)


def test_length_sorted_batches_cover_every_row_once_longest_first():
    from semmatch_tf.data.pipeline import length_sorted_batches

    lengths = np.array([3, 9, 1, 9, 5, 7, 2])
    batches = length_sorted_batches(lengths, 3)
    assert [len(b) for b in batches] == [3, 3, 1]
    assert np.concatenate(batches).tolist() == [1, 3, 5, 4, 0, 6, 2]  # ties keep input order
    assert length_sorted_batches(np.array([], np.int64), 4) == []
    with pytest.raises(ValueError, match="batch_size"):
        length_sorted_batches(lengths, 0)


def test_batches_with_a_call_cost_are_the_cheapest_contiguous_cuts():
    """With a call cost the cuts minimise rows x longest + cost per batch: checked against every
    way of cutting the length-sorted rows into batches of at most ``batch_size``."""
    import itertools

    from semmatch_tf.data.pipeline import length_sorted_batches

    def work(batches, lengths, cost):
        return sum(len(rows) * lengths[rows].max() + cost for rows in batches)

    rng = np.random.default_rng(5)
    for trial in range(30):
        lengths, batch_size, cost = rng.integers(1, 60, rng.integers(1, 9)), int(rng.integers(1, 5)), float(rng.integers(0, 80))
        batches = length_sorted_batches(lengths, batch_size, cost)
        order = np.concatenate(batches)
        assert sorted(order.tolist()) == list(range(len(lengths))) and max(map(len, batches)) <= batch_size
        assert order.tolist() == np.argsort(-lengths, kind="stable").tolist()  # still longest first
        n, cheapest = len(lengths), np.inf
        for cuts in itertools.product([False, True], repeat=n - 1):
            starts = [0] + [i + 1 for i, cut in enumerate(cuts) if cut]
            pieces = [order[a:b] for a, b in zip(starts, starts[1:] + [n])]
            if max(map(len, pieces)) <= batch_size:
                cheapest = min(cheapest, work(pieces, lengths, cost))
        assert work(batches, lengths, cost) == pytest.approx(cheapest)
    # a free call: one batch per distinct length; a dear one: full batches
    lengths = np.array([30, 8, 30, 9, 8])
    assert [b.tolist() for b in length_sorted_batches(lengths, 5, 0.0)] == [[0, 2], [3], [1, 4]]
    assert [len(b) for b in length_sorted_batches(lengths, 5, 1e6)] == [5]


def test_embedding_order_follows_the_input_not_the_batches(encoder):
    texts = ["a much longer text about red shoes and hats", "hat", "green bag", "café noir 2 blue"]
    vectors = encoder.embed_products(texts, batch_size=2)
    one_by_one = np.concatenate([encoder.embed_products([t], batch_size=1) for t in texts])
    np.testing.assert_allclose(vectors, one_by_one, rtol=1e-5, atol=1e-6)
    assert encoder.embed_products([], batch_size=2).shape == (0, 8)
