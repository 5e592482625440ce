"""The BiLSTM with match features (``model.match_features``): the head reads how the raw title
covers the raw query beside the encoders. A run trains through length buckets and token dropout
with the extra input, reloads to the same scores, exports as a SavedModel that passes check-export,
and explains its score with attributions that add up to it."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

CONFIG = {"data": {"format": "demo", "limit": 500, "split": [0.7, 0.15, 0.15]},
          "text": {"vocab_size": 400, "min_frequency": 1, "query_length": 8, "product_length": 16,
                   "length_buckets": [8, 12]},
          "model": {"family": "bilstm", "head": "regression", "embedding_dim": 8, "lstm_units": 8, "hidden_units": 8,
                    "match_features": True},
          "training": {"epochs": 1, "batch_size": 32, "early_stopping_patience": None, "token_dropout": 0.1,
                       "compare_baseline": False}}


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory):
    from semmatch_tf import RunConfig, train

    run_dir = tmp_path_factory.mktemp("wide") / "run"
    train(RunConfig.from_dict(CONFIG), run_dir, verbose=0)
    return run_dir


def test_a_bilstm_with_match_features_trains_reloads_and_exports(wide_run, tmp_path):
    from semmatch_tf import load_run
    from semmatch_tf.export import export_model
    from semmatch_tf.export.check import check_export
    from semmatch_tf.models.tfidf import MATCH_FEATURES

    matcher = load_run(wide_run)
    assert matcher.preprocessor.facts()["match_features"] == "match_features"
    assert matcher.model.input["match_features"].shape[-1] == len(MATCH_FEATURES)
    queries, products = ["red kettle", "drill"], ["Red electric kettle 1.7 l", "Cordless drill 18V"]
    features = matcher.preprocessor({"query": np.array(queries), "product": np.array(products)})["match_features"]
    assert features.shape == (2, len(MATCH_FEATURES)) and float(features[0, MATCH_FEATURES.index("word_share")]) == 1.0
    np.testing.assert_allclose(load_run(wide_run).score(queries, products), matcher.score(queries, products))
    version = export_model(matcher, tmp_path / "serving", name="wide")
    report = check_export(version, matcher=matcher)
    assert report["ok"], report["problems"]
    assert report["max_abs_diff"]["serving_default"] < 1e-5


def test_the_match_features_move_the_score_and_the_explanation_adds_up(wide_run):
    from semmatch_tf import load_run
    from semmatch_tf.explain.explainer import Explainer

    matcher = load_run(wide_run)
    norm = matcher.model.get_layer("match_features_norm")
    assert norm.moving_variance.numpy().max() != 1.0  # trained: batch statistics reached the moving ones
    explanation = Explainer(matcher).explain("red kettle", "Red electric kettle 1.7 l")
    assert explanation.score == pytest.approx(float(matcher.score(["red kettle"], ["Red electric kettle 1.7 l"])[0]),
                                              abs=1e-5)
    assert explanation.completeness["pair"]["relative_gap"] < 0.05


def test_match_features_are_refused_outside_the_bilstm_family():
    from semmatch_tf import RunConfig
    from semmatch_tf.training.config import ConfigError

    bad = yaml.safe_load(yaml.safe_dump(CONFIG))
    bad["model"] = {"family": "bert", "head": "regression", "match_features": True}
    with pytest.raises(ConfigError, match="model.match_features"):
        RunConfig.from_dict(bad)
