"""The strongest cheap baseline inside the TF graph: the same numbers as scikit-learn, on awkward
strings and on real English and Chinese slices, and as a member of an ensemble exported as ONE
SavedModel that passes check-export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, real_file

# Regex specials, units, Unicode whitespace (ideographic space, no-break space), accents, CJK, empty.
AWKWARD = [
    ("1/2 in. (3-pack)", "Everbilt 1/2 in. x 3 ft. (3-Pack) pipe"),
    ("a+b [c]?", "A+B [C]? \\E adapter $5.00 ^x|y"),
    ("", "anything at all"),
    ("Café  crème", "CAFÉ\u00a0crème\u3000pods"),
    ("无线 鼠标", "罗技无线鼠标 M185"),
    ("x", "x"),
    ("   ", "tabs\tand\nnewlines"),
]


def _in_graph(layer, queries, products) -> np.ndarray:
    return layer({"query": tf.constant(queries, tf.string), "product": tf.constant(products, tf.string)}).numpy()


def _frame():
    from semmatch_tf.data.demo import load_demo

    return load_demo().frame


def test_the_in_graph_ridge_scores_as_scikit_learn_on_demo_and_awkward_pairs():
    from semmatch_tf.models.tfidf import StrongPairRidge, TfidfPairLinear

    frame = _frame()
    queries = frame["query"].tolist() + [q for q, _ in AWKWARD]
    products = frame["product"].tolist() + [p for _, p in AWKWARD]
    grades = np.r_[frame["grade"].to_numpy(), np.linspace(1.0, 3.0, len(AWKWARD))]
    ridge = StrongPairRidge(alphas=(1.0,)).fit(queries, products, grades)
    layer = TfidfPairLinear.from_fitted(ridge, grade_range=(1.0, 3.0))
    unit = _in_graph(layer, queries, products)
    reference = ridge.predict(queries, products)
    np.testing.assert_allclose(unit[:, 0] * 2.0 + 1.0, reference, atol=1e-4)
    assert np.std(reference) > 0.1  # the fit tells pairs apart: the equality is not of constants


def test_the_in_graph_logistic_regression_gives_scikit_learns_probabilities():
    from semmatch_tf.models.tfidf import StrongPairLogReg, TfidfPairLinear

    frame = _frame()
    half = len(frame) // 2
    train, held = frame.iloc[:half], frame.iloc[half:]
    # char n-grams only: the layer must zero the word block the fit never saw
    model = StrongPairLogReg(grid=((4.0, "balanced"),), feature_sets=("char",)).fit(
        train["query"].tolist(), train["product"].tolist(), train["label"].to_numpy(),
        validation=(held["query"].tolist(), held["product"].tolist(), held["label"].to_numpy()))
    assert model.columns is not None
    layer = TfidfPairLinear.from_fitted(model, num_classes=int(frame["label"].max()) + 1)
    queries, products = held["query"].tolist(), held["product"].tolist()
    np.testing.assert_allclose(_in_graph(layer, queries, products), model.predict_proba(queries, products), atol=1e-5)


@pytest.mark.parametrize("name", ["home_depot", "lcqmc"])
def test_the_in_graph_baseline_matches_scikit_learn_on_real_slices(name):
    from semmatch_tf.data.loaders import load_home_depot, load_lcqmc
    from semmatch_tf.models.tfidf import StrongPairLogReg, StrongPairRidge, TfidfPairLinear

    if name == "home_depot":
        frame = load_home_depot(real_file("home-depot-search-relevance/train.csv"), limit=2500).frame
        train, held = frame.iloc[:2000], frame.iloc[2000:]
        model = StrongPairRidge(alphas=(3.0,)).fit(train["query"].tolist(), train["product"].tolist(),
                                                   train["grade"].to_numpy())
        layer = TfidfPairLinear.from_fitted(model, grade_range=(1.0, 3.0))
        got = _in_graph(layer, held["query"].tolist(), held["product"].tolist())[:, 0] * 2.0 + 1.0
        want = model.predict(held["query"].tolist(), held["product"].tolist())
    else:
        frame = load_lcqmc(real_file("lcqmc/dev.txt"), limit=2500).frame
        train, held = frame.iloc[:2000], frame.iloc[2000:]
        model = StrongPairLogReg(grid=((4.0, None),), feature_sets=("char+word",)).fit(
            train["query"].tolist(), train["product"].tolist(), train["label"].to_numpy())
        layer = TfidfPairLinear.from_fitted(model, num_classes=2)
        got = _in_graph(layer, held["query"].tolist(), held["product"].tolist())
        want = model.predict_proba(held["query"].tolist(), held["product"].tolist())
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_an_ensemble_with_the_baseline_exports_as_one_savedmodel_that_passes_check_export(tmp_path):
    from semmatch_tf.ensemble import ensemble_from_runs
    from semmatch_tf.export import export_model
    from semmatch_tf.export.check import check_export

    run = REPO / "tests" / "fixtures" / "runs" / "bilstm_v0_1"
    ensemble = ensemble_from_runs([run], "stacked", baseline=True)
    assert ensemble.describe()["members"] == [str(run), "strong_pair_logreg"]
    assert ensemble.head == "classification" and abs(sum(ensemble.weights) - 1.0) < 1e-9
    version = export_model(ensemble, tmp_path / "serving", name="with_baseline")
    report = check_export(version, matcher=ensemble)
    assert report["ok"], report["problems"]
    assert report["max_abs_diff"]["serving_default"] < 1e-5 and not report["child_imported_semmatch_tf"]
    metadata = json.loads((version / "assets.extra" / "semmatch_metadata.json").read_text())
    assert metadata["ensemble_members"][1]["model"] == "strong_pair_logreg"


def test_cli_ensemble_takes_one_run_and_the_baseline(tmp_path):
    import subprocess
    import sys

    run = REPO / "tests" / "fixtures" / "runs" / "bilstm_v0_1"
    made = subprocess.run([sys.executable, "-m", "semmatch_tf.cli", "ensemble", "--model", str(run), "--baseline",
                           "--output", str(tmp_path / "serving")], capture_output=True, text=True, cwd=REPO,
                          timeout=600)
    assert made.returncode == 0, made.stderr
    described = json.loads(made.stdout)
    assert described["members"][1] == "strong_pair_logreg" and described["weights"] == [0.5, 0.5]
