"""The BiLSTM matcher, its layers and the tf.data pipeline."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from semmatch_tf.data.pipeline import PipelineOptions, make_dataset, targets_of
from semmatch_tf.data.schema import LabelScheme, PairDataset, build_frame
from semmatch_tf.models import BiLSTMMatcher, MaskedPooling, predicted_grades
from semmatch_tf.text import WordPieceTokenizer, learn_vocabulary
from semmatch_tf.text.preprocessor import PairPreprocessor

SCHEME = LabelScheme(("irrelevant", "partial", "exact"), (0.0, 1.0, 2.0), (0.0, 2.0))
PAIRS = [("apple charger", "Apple USB-C charger 20W", 2), ("apple charger", "Fuji apples 1kg", 0),
         ("fresh apples", "Fuji apples 1kg", 2), ("fresh apples", "Apple iPhone case", 0),
         ("苹果手机壳", "透明苹果手机壳", 2), ("苹果手机壳", "新鲜苹果", 0),
         ("zapatos rojos", "zapatos rojos de piel", 2), ("zapatos rojos", "zapatos azules", 1)]


@pytest.fixture(scope="module")
def dataset() -> PairDataset:
    q, p, g = zip(*(PAIRS * 10))
    return PairDataset(build_frame(query=q, product=p, label=g, grade=g, language="en"), SCHEME, "toy")


@pytest.fixture(scope="module")
def preprocessor(dataset) -> PairPreprocessor:
    vocabulary = learn_vocabulary(dataset.frame["query"].tolist() + dataset.frame["product"].tolist(),
                                  vocab_size=200, min_frequency=1)
    return PairPreprocessor(WordPieceTokenizer(vocabulary), query_length=6, product_length=12)


def tiny_matcher(preprocessor, **overrides) -> BiLSTMMatcher:
    options = dict(num_classes=3, embedding_dim=16, lstm_units=16, hidden_units=16, dropout=0.0,
                   query_length=6, product_length=12)
    options.update(overrides)
    return BiLSTMMatcher(preprocessor.tokenizer.vocabulary_size, **options)


def test_pipeline_batches_dict_inputs_with_fixed_shapes(dataset, preprocessor):
    data = make_dataset(dataset, preprocessor, PipelineOptions(batch_size=16, shuffle=True, drop_remainder=True))
    features, targets = next(iter(data))
    assert set(features) == {"query", "product"}
    assert features["query"].shape == (16, 6) and features["product"].shape == (16, 12)
    assert targets.dtype == tf.int32 and set(targets.numpy()) <= {0, 1, 2}
    assert sum(1 for _ in data) == len(dataset) // 16, "drop_remainder keeps only full batches"


def test_pipeline_keeps_order_without_shuffle(dataset, preprocessor):
    data = make_dataset(dataset, preprocessor, PipelineOptions(batch_size=8))
    targets = np.concatenate([t.numpy() for _, t in data])
    np.testing.assert_array_equal(targets, dataset.frame["label"].to_numpy())


def test_grade_targets_are_normalised(dataset):
    targets = targets_of(dataset, "grade")
    assert targets.min() == 0.0 and targets.max() == 1.0


def test_length_buckets_pad_to_bucket_bounds(dataset, preprocessor):
    data = make_dataset(dataset, preprocessor, PipelineOptions(batch_size=4, length_buckets=(4, 8)))
    widths = {features["product"].shape[1] for features, _ in data}
    assert widths <= {4, 8, 12} and len(widths) >= 2
    # queries: the batch's longest rounded up to 4, capped at query_length 6
    assert {f["query"].shape[1] for f, _ in data} <= {4, 6}


def test_length_buckets_leave_the_bilstm_outputs_unchanged(dataset, preprocessor):
    """Masked padding: a batch cut to its bucket scores exactly like the same pairs padded in full."""
    fixed = tiny_matcher(preprocessor)
    flexible = tiny_matcher(preprocessor, query_length=None, product_length=None)
    flexible.set_weights(fixed.get_weights())
    bucketed = make_dataset(dataset, preprocessor, PipelineOptions(batch_size=8, length_buckets=(4, 8)),
                            with_targets=False)
    for features in bucketed.take(4):
        assert features["product"].shape[1] < 12 or features["query"].shape[1] < 6
        full = {"query": tf.pad(features["query"], [[0, 0], [0, 6 - features["query"].shape[1]]]),
                "product": tf.pad(features["product"], [[0, 0], [0, 12 - features["product"].shape[1]]])}
        np.testing.assert_allclose(flexible(features).numpy(), fixed(full).numpy(), atol=1e-5)


def test_token_dropout_only_replaces_real_tokens_with_unk(dataset, preprocessor):
    clean = make_dataset(dataset, preprocessor, PipelineOptions(batch_size=80))
    noisy = make_dataset(dataset, preprocessor, PipelineOptions(batch_size=80, token_dropout=0.5, seed=3))
    a = next(iter(clean))[0]["product"].numpy()
    b = next(iter(noisy))[0]["product"].numpy()
    changed = a != b
    assert changed.any(), "half of the real tokens should be dropped"
    assert (b[changed] == 1).all(), "dropped tokens become [UNK]"
    assert (a[changed] >= 5).all(), "padding, [CLS] and other specials are never dropped"


def test_masked_pooling_ignores_padding():
    values = np.array([[[1.0], [3.0], [100.0]]], np.float32)
    mask = np.array([[True, True, False]])
    assert float(MaskedPooling("mean")(values, mask=mask)[0, 0]) == pytest.approx(2.0)
    assert float(MaskedPooling("max")(values, mask=mask)[0, 0]) == pytest.approx(3.0)


def test_matcher_learns_the_toy_task(dataset, preprocessor):
    keras.utils.set_random_seed(1)
    model = tiny_matcher(preprocessor)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    data = make_dataset(dataset, preprocessor, PipelineOptions(batch_size=16, shuffle=True, drop_remainder=True))
    history = model.fit(data, epochs=8, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["accuracy"][-1] >= 0.9


@pytest.mark.parametrize("overrides", [{}, {"head": "regression", "pooling": "max"}, {"pooling": "mean"}])
def test_keras_round_trip_is_exact(dataset, preprocessor, overrides, tmp_path):
    model = tiny_matcher(preprocessor, **overrides)
    features = next(iter(make_dataset(dataset, preprocessor, PipelineOptions(batch_size=8))))[0]
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(restored, BiLSTMMatcher) and restored.get_config() == model.get_config()
    np.testing.assert_array_equal(model.predict(features, verbose=0), restored.predict(features, verbose=0))


def test_head_output_shapes_and_float32_under_mixed_precision(preprocessor):
    features = {"query": np.ones((2, 6), np.int32), "product": np.ones((2, 12), np.int32)}
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = tiny_matcher(preprocessor)
        out = model(features)
        assert out.dtype == "float32" and out.shape == (2, 3)
        assert model.get_layer("hidden").compute_dtype == "float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert tiny_matcher(preprocessor, head="regression")(features).shape == (2, 1)


def test_predicted_grades():
    probabilities = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    np.testing.assert_allclose(predicted_grades(probabilities, "classification", SCHEME), [0.0, 1.5])
    np.testing.assert_allclose(predicted_grades(np.array([[0.25]]), "regression", SCHEME), [0.5])


def test_exact_match_flags_ignore_padding_and_specials():
    from semmatch_tf.models import ExactMatchFlags

    query = np.array([[2, 7, 8, 0]], np.int32)       # [CLS] 7 8 [PAD]
    product = np.array([[2, 9, 7, 0, 0]], np.int32)  # [CLS] 9 7 [PAD] [PAD]
    q_flags, p_flags = ExactMatchFlags()(query, product)
    assert np.asarray(q_flags)[0, :, 0].tolist() == [0, 1, 0, 0]
    assert np.asarray(p_flags)[0, :, 0].tolist() == [0, 0, 1, 0, 0]


def test_matcher_without_exact_match_has_no_flag_layer(preprocessor):
    model = tiny_matcher(preprocessor, exact_match=False)
    assert "exact_match" not in [layer.name for layer in model.layers]
    assert "exact_match" in [layer.name for layer in tiny_matcher(preprocessor).layers]


def test_mined_negatives_add_unjudged_bm25_neighbours_as_irrelevant(dataset):
    from semmatch_tf.training.negatives import with_mined_negatives

    q, p, g = zip(*PAIRS)
    extra = ["Apple USB-C cable 1m", "Apple Watch charger", "red apples 2kg", "zapatos negros", "透明手机壳"]
    catalogue = PairDataset(build_frame(query=list(q) + ["catalogue"] * 5, product=list(p) + extra,
                                        label=list(g) + [0] * 5, grade=list(g) + [0] * 5, language="en"), SCHEME)
    mined = with_mined_negatives(catalogue, count=2, depth=5, seed=0)
    added = mined.frame.iloc[len(catalogue):]
    # up to two per query, only titles BM25 matches that were not judged for it; "catalogue" shares
    # no word with any title and gets none
    assert added.groupby("query").size().to_dict() == {"apple charger": 2, "fresh apples": 1, "苹果手机壳": 1,
                                                       "zapatos rojos": 1}
    assert set(added[added["query"] == "zapatos rojos"]["product"]) == {"zapatos negros"}
    assert (added["label"] == 0).all() and (added["grade"] == 0.0).all()
    judged = set(zip(catalogue.frame["query"], catalogue.frame["product"]))
    assert not judged & set(zip(added["query"], added["product"])), "never a pair that was judged"
    charger = added[added["query"] == "apple charger"]["product"].tolist()
    # BM25 neighbours that share a word with the query, not random products
    assert all("apple" in t.lower() or "charger" in t.lower() for t in charger)
    assert with_mined_negatives(catalogue, count=0, depth=5, seed=0) is catalogue
    again = with_mined_negatives(catalogue, count=2, depth=5, seed=0)
    assert again.frame.equals(mined.frame), "seeded"
