"""Bi-encoders: losses, the two-tower model, contrastive batches and negatives, training, search."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from semmatch_tf.data.schema import LabelScheme, PairDataset, build_frame
from semmatch_tf.models.bi_encoder import TwoTowerEncoder, build_towers
from semmatch_tf.models.two_tower import TwoTowerModel
from semmatch_tf.text import learn_vocabulary
from semmatch_tf.training import contrastive
from semmatch_tf.training.config import RunConfig
from semmatch_tf.losses import (CosineRegressionLoss, InBatchSoftmaxLoss, cosine_regression_loss,
                                         in_batch_softmax_loss)

SCHEME = LabelScheme(("irrelevant", "partial", "exact"), (0.0, 1.0, 2.0), (0.0, 2.0))
COLOURS = ["red", "blue", "green", "black", "white", "yellow"]
ITEMS = ["shoes", "shirt", "hat", "bag"]


def toy_pairs() -> PairDataset:
    """24 queries ("red shoes"), each with 2 exact products, 1 partial and 2 irrelevant ones."""
    rows = []
    for c, colour in enumerate(COLOURS):
        for i, item in enumerate(ITEMS):
            query = f"{colour} {item}"
            other_colour, other_item = COLOURS[(c + 1) % 6], ITEMS[(i + 1) % 4]
            rows += [(query, f"{colour.title()} {item} classic", 2), (query, f"{item} in {colour}, premium", 2),
                     (query, f"{colour} {item} and {other_item} set", 1),
                     (query, f"{other_colour.title()} {item} classic", 0),
                     (query, f"{colour.title()} {other_item} classic", 0)]
    q, p, g = zip(*rows)
    return PairDataset(build_frame(query=q, product=p, label=g, grade=g, language="en"), SCHEME, "toy")


def tiny_config(**bi_encoder) -> RunConfig:
    return RunConfig.from_dict({
        "model": {"family": "bilstm_bi_encoder", "embedding_dim": 16, "lstm_units": 16, "pooling": "max",
                  "dropout": 0.0, "bi_encoder": {"embedding_size": 16, **bi_encoder}},
        "text": {"vocab_size": 300, "min_frequency": 1, "query_length": 6, "product_length": 10},
        "training": {"epochs": 4, "batch_size": 8, "learning_rate": 0.01, "early_stopping_patience": None},
    })


# -- losses ---------------------------------------------------------------------------------------
def test_in_batch_softmax_by_hand():
    similarities = tf.constant([[2.0, 0.0], [1.0, 1.0]])
    # row 0: -log(e^2 / (e^2 + e^0)) = log(1 + e^-2); row 1: -log(1/2) = log 2
    rows = [math.log(1 + math.exp(-2)), math.log(2)]
    np.testing.assert_allclose(in_batch_softmax_loss(similarities), rows, rtol=1e-5)
    # columns (product -> query): col 0 [2, 1] label 0, col 1 [0, 1] label 1: both log(1 + e^-1)
    columns = [math.log(1 + math.exp(-1))] * 2
    np.testing.assert_allclose(in_batch_softmax_loss(similarities, symmetric=True),
                               [(r + c) / 2 for r, c in zip(rows, columns)], rtol=1e-5)
    # temperature 0.5 doubles the logits: row 0 = log(1 + e^-4), row 1 = log 2
    np.testing.assert_allclose(in_batch_softmax_loss(similarities, temperature=0.5),
                               [math.log(1 + math.exp(-4)), math.log(2)], rtol=1e-5)
    # an extra hard-negative column [1, 0]: row 0 = log(1 + e^-2 + e^-1), row 1 = log(2 + e^-1)
    with_hard = tf.constant([[2.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    expected = [math.log(1 + math.exp(-2) + math.exp(-1)), math.log(2 + math.exp(-1))]
    np.testing.assert_allclose(in_batch_softmax_loss(with_hard), expected, rtol=1e-5)
    # symmetric ignores the extra columns on the product side
    np.testing.assert_allclose(in_batch_softmax_loss(with_hard, symmetric=True),
                               [(e + c) / 2 for e, c in zip(expected, columns)], rtol=1e-5)
    assert float(InBatchSoftmaxLoss()(tf.zeros(2), similarities)) == pytest.approx(sum(rows) / 2, rel=1e-5)


def test_cosine_regression_by_hand():
    grades, cosines = tf.constant([1.0, 0.0, 0.5]), tf.constant([0.8, -0.2, 0.1])
    # [-1, 1]: targets 1, -1, 0 -> errors 0.04, 0.64, 0.01
    np.testing.assert_allclose(cosine_regression_loss(grades, cosines), [0.04, 0.64, 0.01], rtol=1e-5)
    # [0, 1]: targets 1, 0, 0.5 -> errors 0.04, 0.04, 0.16
    np.testing.assert_allclose(cosine_regression_loss(grades, cosines, target_range="[0,1]"), [0.04, 0.04, 0.16],
                               rtol=1e-5)
    assert float(CosineRegressionLoss()(grades, cosines)) == pytest.approx(0.23, rel=1e-5)
    with pytest.raises(ValueError):
        CosineRegressionLoss("[0,2]")


# -- the model ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vocabulary() -> list[str]:
    frame = toy_pairs().frame
    return learn_vocabulary(frame["query"].tolist() + frame["product"].tolist(), vocab_size=300, min_frequency=1)


@pytest.mark.parametrize("shared", [True, False])
def test_bi_encoder_outputs_and_keras_round_trip(vocabulary, tmp_path, shared):
    config = tiny_config(shared_towers=shared)
    towers = build_towers(config.model, config.text, vocabulary=vocabulary)
    assert towers.shared is shared
    model = TwoTowerModel(towers.query_tower, None if shared else towers.product_tower, temperature=0.1)
    inputs = {"query": towers.query_preprocessor(tf.constant(["red shoes", "blue hat", "bag"])),
              "product": towers.product_preprocessor(tf.constant(["Red shoes classic", "blue hat", "a bag"])),
              "negatives": tf.reshape(towers.product_preprocessor(tf.constant(["x", "y", "z", "w", "v", "u"])),
                                      (3, 2, 10))}
    similarities = model(inputs)
    assert similarities.shape == (3, 3 + 6) and similarities.dtype == tf.float32
    assert np.all(np.abs(similarities.numpy()) <= 1 / 0.1 + 1e-4), "cosines scaled by 1 / temperature"
    path = tmp_path / "bi.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.shared is shared and loaded.temperature == pytest.approx(0.1)
    np.testing.assert_array_equal(loaded(inputs).numpy(), similarities.numpy())
    cosine = TwoTowerModel(towers.query_tower, towers.product_tower, output="cosine")(inputs)
    np.testing.assert_allclose(cosine.numpy(), np.diag(similarities.numpy()[:, :3]) * 0.1, rtol=1e-5, atol=1e-6)


def test_two_tower_encoder_embeds_unit_vectors_in_batches(vocabulary):
    config = tiny_config()
    encoder = TwoTowerEncoder.from_towers(build_towers(config.model, config.text, vocabulary=vocabulary))
    texts = [f"{c} {i}" for c in COLOURS for i in ITEMS]
    vectors = encoder.embed_products(texts, batch_size=5)
    assert vectors.shape == (24, 16) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(encoder.embed_products(texts[:3], batch_size=2), vectors[:3], rtol=1e-5, atol=1e-6)
    assert encoder.embed_queries([]).shape == (0, 16)


# -- contrastive data -----------------------------------------------------------------------------
def test_positive_threshold():
    data = toy_pairs()
    assert contrastive.positive_threshold(data) == 2.0, "discrete grades: the top class"
    assert contrastive.positive_threshold(data, 1.0) == 1.0
    home_depot = LabelScheme(("irrelevant", "partial", "relevant"), (1.0, 2.0, 3.0), (1.0, 3.0))
    frame = build_frame(query=["q"] * 3, product=["a", "b", "c"], label=[0, 1, 2], grade=[1.0, 2.33, 2.67],
                        language="en")
    assert contrastive.positive_threshold(PairDataset(frame, home_depot)) == 2.5, "continuous: the upper part"


def test_packed_batches_have_no_duplicates_or_false_negatives():
    data = toy_pairs()
    examples = contrastive.positive_examples(data, 2.0)
    contrastive.add_hard_negatives(examples, data, count=2, source="judged", threshold=2.0, seed=3)
    batches = contrastive.pack_batches(examples.query_keys, examples.product_keys, 8, seed=3,
                                       negatives=examples.negatives)
    assert batches.shape[1] == 8 and len(batches) >= 4
    assert len(np.unique(batches)) == batches.size, "each row at most once per packing"
    positives = {}
    for q, p in zip(examples.query_keys, examples.product_keys):
        positives.setdefault(q, set()).add(p)
    for batch in batches:
        queries = [examples.query_keys[r] for r in batch]
        products = [examples.product_keys[r] for r in batch]
        assert len(set(queries)) == 8 and len(set(products)) == 8
        columns = set(products) | {n for r in batch for n in examples.negatives[r]}
        for r in batch:  # every column other than the row's own product is a true negative
            others = columns - {examples.product_keys[r]}
            assert not others & positives[examples.query_keys[r]]
    again = contrastive.pack_batches(examples.query_keys, examples.product_keys, 8, seed=3,
                                     negatives=examples.negatives)
    np.testing.assert_array_equal(batches, again)
    other = contrastive.pack_batches(examples.query_keys, examples.product_keys, 8, seed=4,
                                     negatives=examples.negatives)
    assert not np.array_equal(batches, other)


def test_duplicate_queries_force_separate_batches():
    batches = contrastive.pack_batches(["q", "q", "r", "r"], ["a", "b", "c", "d"], 2, seed=0)
    assert len(batches) == 2
    for batch in batches:
        assert sorted(["q" if r < 2 else "r" for r in batch]) == ["q", "r"]


@pytest.mark.parametrize("source", ["judged", "bm25"])
def test_hard_negatives_are_never_judged_positive(source):
    data = toy_pairs()
    examples = contrastive.add_hard_negatives(contrastive.positive_examples(data, 2.0), data, count=2,
                                              source=source, threshold=2.0, seed=0)
    judged = contrastive.judged_by_query(data)
    seen = set()
    for query, negatives in zip(examples.query_keys, examples.negatives):
        assert len(negatives) == 2
        assert all(judged[query].get(n, 0.0) < 2.0 for n in negatives)
        if source == "judged":
            assert all(n in judged[query] for n in negatives), "judged negatives come from the same query"
            if query not in seen:  # its first positive gets the lowest-graded ones (later ones rotate)
                assert all(judged[query][n] == 0.0 for n in negatives)
        seen.add(query)
        assert all(n in examples.product_texts for n in negatives)


# -- training, run directory, search --------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = toy_pairs()  # 5 pairs per query: 16 training, 4 validation, 4 test queries
    train, validation, test = (data.subset(np.arange(5 * a, 5 * b)) for a, b in ((0, 16), (16, 20), (20, 24)))
    run_dir = tmp_path_factory.mktemp("bi_run")
    config = tiny_config(hard_negatives=1, hard_negative_source="judged", temperature=0.1)
    config.training.batch_size = 4
    report = contrastive.train_bi_encoder(config, run_dir, (train, validation, test), verbose=0)
    return run_dir, report, test


def test_training_lowers_the_loss_and_writes_the_run(trained):
    run_dir, report, test = trained
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["loss"]) == 4 and history["loss"][-1] < history["loss"][0]
    assert "val_loss" in history and 6 <= report["training"]["steps_per_epoch"] <= 8  # <= 32 positives / 4
    for name in ("vocabulary.txt", "query_tower.keras", "query_preprocessor.keras", "product_preprocessor.keras",
                 "bi_encoder.json", "labels.json", "report.json", "history.json", "MODEL_CARD.md",
                 "plots/training_curves.png", "plots/by_language.png"):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "product_tower.keras").exists(), "a shared tower is saved once"
    assert json.loads((run_dir / "labels.json").read_text())["family"] == "bi_encoder"
    assert (run_dir / "logs" / "projector" / "projector_config.pbtxt").is_file()
    projected = (run_dir / "logs" / "projector" / "products_and_queries_metadata.tsv").read_text("utf-8").splitlines()
    assert projected[0] == "text\tkind\tlanguage" and len(projected) == 1 + test.frame["product_id"].nunique() + 4, \
        "each of the test split's products and queries once"
    assert {line.split("\t")[1] for line in projected[1:]} == {"product", "query"}
    assert report["family"] == "bi_encoder" and report["counts"] == {"pairs": 20, "queries": 4}
    assert set(report["by_language"]) == {"en"} and "mrr" in report["ranking"]
    assert 0.0 <= report["ranking"]["ndcg@10"] <= 1.0 and "retrieval" in report
    assert report == json.loads((run_dir / "report.json").read_text())


def test_loaded_run_embeds_like_the_trained_towers(trained):
    run_dir, _, test = trained
    encoder = contrastive.load_bi_encoder(run_dir)
    vectors = encoder.embed_queries(["red shoes", "yellow bag"])
    assert vectors.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert contrastive.is_bi_encoder_run(run_dir)
    with pytest.raises(FileNotFoundError, match="bi-encoder"):
        contrastive.load_bi_encoder(run_dir / "logs")


def test_index_and_search_with_the_trained_run(trained, tmp_path):
    from semmatch_tf.retrieval.search import build_index, format_results, search_index

    run_dir, _, test = trained
    titles = sorted(set(toy_pairs().frame["product"]))
    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text("product_id,title\n" + "".join(f"sku{i},{t.replace(',', '')}\n" for i, t in enumerate(titles)))
    meta = build_index(run_dir, catalogue, tmp_path / "index", progress=False)
    assert meta["parts"] == ["dense", "bm25"] and meta["count"] == len(titles) and meta["dims"] == 16
    for mode in ("dense", "bm25", "hybrid"):
        results = search_index(tmp_path / "index", "yellow bag", k=5, mode=mode)
        assert len(results) == 5 and results["rank"].tolist() == [1, 2, 3, 4, 5]
        assert results["score"].is_monotonic_decreasing
    assert "yellow" in format_results(results).lower()
    exact = search_index(tmp_path / "index", "yellow bag", k=5, mode="dense")
    fast = search_index(tmp_path / "index", "yellow bag", k=5, mode="dense", compute="bfloat16")
    np.testing.assert_allclose(fast["score"], exact["score"], atol=0.01)  # the query side in bf16
    assert fast["title"].iloc[0] == exact["title"].iloc[0]


# -- any (preprocessor, tower) pair plugs in: a BERT-shaped stand-in ------------------------------
class DictPreprocessor(keras.layers.Layer):
    """strings -> {"token_ids", "padding_mask"}, the input structure of keras-hub BERT towers."""

    def __init__(self, vocabulary, length: int) -> None:
        super().__init__()
        from semmatch_tf.text import WordPieceTokenizer

        self.tokenizer = WordPieceTokenizer(vocabulary, sequence_length=length)

    def call(self, strings):
        ids = self.tokenizer(strings)
        return {"token_ids": ids, "padding_mask": ids != 0}


def dict_tower(vocabulary_size: int, length: int) -> keras.Model:
    from semmatch_tf.models.encoders import MaskedPooling

    inputs = {"token_ids": keras.Input((length,), dtype="int32", name="token_ids"),
              "padding_mask": keras.Input((length,), dtype="bool", name="padding_mask")}
    vectors = keras.layers.Embedding(vocabulary_size, 16)(inputs["token_ids"])
    pooled = MaskedPooling("mean")(vectors, mask=inputs["padding_mask"])
    return keras.Model(inputs, keras.layers.UnitNormalization()(keras.layers.Dense(16)(pooled)))


def test_dict_input_towers_train_with_hard_negatives(vocabulary):
    from semmatch_tf.models.bi_encoder import Towers
    from semmatch_tf.losses import in_batch_metrics

    keras.utils.set_random_seed(1)
    preprocessor, tower = DictPreprocessor(vocabulary, 10), dict_tower(len(vocabulary), 10)
    towers = Towers(preprocessor, tower, preprocessor, tower)
    data = toy_pairs()
    examples = contrastive.add_hard_negatives(contrastive.positive_examples(data, 2.0), data, count=2,
                                              source="judged", threshold=2.0, seed=0)
    batches, steps = contrastive.epoch_packings(examples, 8, epochs=5, seed=0)
    dataset = contrastive.softmax_dataset(examples, towers, batches)
    features = next(iter(dataset))  # no labels: the positive of each query is its own row's product
    assert features["negatives"]["token_ids"].shape == (8, 2, 10)
    model = TwoTowerModel(tower, temperature=0.1)
    model.compile(optimizer=keras.optimizers.Adam(0.02), metrics=in_batch_metrics())  # the model's own loss
    history = model.fit(dataset, epochs=5, steps_per_epoch=steps, verbose=0, shuffle=False).history
    assert model(features).shape == (8, 8 + 16)
    assert history["loss"][-1] < history["loss"][0]
    vectors = TwoTowerEncoder.from_towers(towers).embed_queries(["red shoes"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_model_mined_negatives_train_in_two_phases(tmp_path):
    data = toy_pairs()
    train, validation = data.subset(np.arange(0, 80)), data.subset(np.arange(80, 100))
    config = tiny_config(hard_negatives=1, hard_negative_source="model")
    config.training.epochs, config.training.batch_size = 2, 4
    report = contrastive.train_bi_encoder(config, tmp_path, (train, validation, validation), verbose=0)
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history["loss"]) == 2, "one warm-up epoch with in-batch negatives, one with mined negatives"
    assert (tmp_path / "warmup" / "final.weights.h5").is_file() and "ranking" in report


def test_cosent_penalises_only_misordered_pairs():
    """CoSENT is log(1 + sum over pairs graded i > j of exp(scale (cos_j - cos_i))): a batch already in
    grade order costs little, the reversed order a lot, equal grades nothing, and the gradient raises
    the cosine of the better-graded pair."""
    import tensorflow as tf

    from semmatch_tf.losses import CoSENTLoss, cosent_loss

    grades = tf.constant([1.0, 0.5, 0.0])
    ordered = float(cosent_loss(grades, tf.constant([0.9, 0.8, 0.7])))
    reversed_ = float(cosent_loss(grades, tf.constant([0.7, 0.8, 0.9])))
    expected = np.log1p(np.exp(20 * -0.1) * 2 + np.exp(20 * -0.2))
    assert ordered == pytest.approx(expected, rel=1e-5) and reversed_ > 4.0 > ordered
    assert float(cosent_loss(tf.constant([0.5, 0.5]), tf.constant([0.1, 0.9]))) == pytest.approx(0.0, abs=1e-6)
    cosines = tf.Variable([0.7, 0.9])
    with tf.GradientTape() as tape:
        loss = CoSENTLoss()(tf.constant([1.0, 0.0]), cosines)
    gradient = tape.gradient(loss, cosines).numpy()
    assert gradient[0] < 0 < gradient[1]  # descending raises cos_0, lowers cos_1
