"""The boosted stack in the graph: match features that say how a title covers a query, trees that
score exactly as scikit-learn's, and a stack that beats its own baseline on real Home Depot pairs
and exports as ONE SavedModel that passes check-export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, real_file


def _features(layer, queries, products) -> dict[str, np.ndarray]:
    from semmatch_tf.models.tfidf import MATCH_FEATURES

    values = layer({"query": tf.constant(queries), "product": tf.constant(products)}).numpy()
    return {name: values[:, i] for i, name in enumerate(MATCH_FEATURES)}


def test_match_features_say_how_a_title_covers_a_query():
    from semmatch_tf.models.tfidf import MatchFeatures

    titles = ["Cordless Drill 18V", "White Paint 1 gal.", "Drill Bits Set", "BEHR Premium DeckOver 1-gal. Coating"]
    layer = MatchFeatures.from_titles(titles)
    got = _features(layer, ["cordless drills", "deck over paint 1 gal", "rubbermaid 2 gal", "drill bits", "", "x"],
                    ["Cordless Drill 18V", "BEHR Premium DeckOver 1-gal. Coating", "White Paint 1 gal.",
                     "Drill Bits Set", "Drill Bits Set", ""])
    # "drills" is found only as a stem; the last word (the product type) is there.
    assert got["word_share"][0] == 0.5 and got["stem_share"][0] == 1.0 and got["last_word_in_title"][0] == 1.0
    # "deck" starts the compound "deckover" ("over" only ends it); "paint" is missing; "1" and "gal" agree.
    assert got["compound_share"][1] == pytest.approx(3 / 5) and got["word_share"][1] == pytest.approx(2 / 5) and got["number_share"][1] == 1.0
    assert got["number_contradict"][1] == 0.0 and got["phrase_match"][1] == 0.0
    # 2 gal against 1 gal: the numbers contradict.
    assert got["query_numbers"][2] == 1.0 and got["number_contradict"][2] == 1.0
    assert got["phrase_match"][3] == 1.0 and got["bigram_share"][3] == 1.0 and got["first_match_position"][3] == 0.0
    # BM25 of "drill bits" against a 3-word title, by its formula (idf over the 4 titles, k1 1.2, b 0.75;
    # units are normalised first: "18V" is "18 volt", "1-gal." is "1 gal").
    assert layer.average_length == pytest.approx(np.mean([4, 4, 3, 6]))
    idf = {w: np.log(1 + (4 - df + 0.5) / (df + 0.5)) for w, df in (("drill", 2), ("bits", 1))}
    norm = 1.2 * (1 - 0.75 + 0.75 * 3 / layer.average_length)
    assert got["bm25"][3] == pytest.approx(sum(v * 2.2 / (1 + norm) for v in idf.values()), rel=1e-5)
    # A typo ("drils") is one edit from a title word; "dril" is not a stem of it and too short for a typo.
    typo = _features(layer, ["cordles drils", "bits"], ["Cordless Drill 18V", "Drill Bit"])
    assert typo["fuzzy_share"][0] == 1.0 and typo["word_share"][0] == 0.0 and typo["fuzzy_share"][1] == 1.0
    # Product types: "stain" is a known title ending (3 titles); "paint" is not.
    stains = ["Deck Stain 1 gal.", "Solid Color Stain", "Wood Stain Sample", "Exterior Paint"]
    typed = _features(MatchFeatures.from_titles(stains), ["stains", "deck stain", "oak stain"],
                      ["Deck Stain 1 gal.", "Exterior Paint", "Wood Stain Sample"])
    assert typed["type_agree"].tolist() == [1.0, 0.0, 1.0] and typed["type_contradict"].tolist() == [0.0, 0.0, 0.0]
    # An empty query or title matches nothing and yields numbers, not NaNs.
    assert got["word_share"][4] == 0.0 and got["query_words"][4] == 0.0 and got["word_share"][5] == 0.0
    assert all(np.isfinite(v).all() for v in got.values())


def test_the_in_graph_typo_test_agrees_with_pair_features_one_edit():
    import itertools
    import random

    from semmatch_tf.ensemble.pair_features import one_edit as python_one_edit
    from semmatch_tf.models.tfidf.match import one_edit

    random.seed(0)
    words = ["lumder", "lumber", "kombo", "combo", "bolt", "boat", "tile", "til", "lumbers", "ulmber", "ñandú", "nandú",
             "ñadú", "", *("".join(random.choice("abcd") for _ in range(random.randint(3, 6))) for _ in range(120))]
    got = one_edit(tf.constant([words]), tf.constant([words])).numpy()[0]
    want = np.array([[python_one_edit(a, b) for b in words] for a in words])
    assert got.shape == want.shape and (got == want).all(), [
        (a, b) for (i, a), (j, b) in itertools.product(enumerate(words), enumerate(words)) if got[i, j] != want[i, j]][:5]


def test_in_graph_trees_score_exactly_as_scikit_learn_on_real_columns():
    from sklearn.ensemble import HistGradientBoostingRegressor

    from semmatch_tf.data.loaders import load_home_depot
    from semmatch_tf.ensemble import GradientBoostedTrees
    from semmatch_tf.models.tfidf import MatchFeatures

    frame = load_home_depot(real_file("home-depot-search-relevance/train.csv"), limit=3000).frame
    layer = MatchFeatures.from_titles(frame["product"].tolist())
    columns = layer({"query": tf.constant(frame["query"].tolist()), "product": tf.constant(frame["product"].tolist())})
    x = columns.numpy()
    fitted = HistGradientBoostingRegressor(max_iter=60, max_leaf_nodes=31, random_state=0).fit(x[:2400],
                                                                                              frame["grade"][:2400])
    trees = GradientBoostedTrees.from_fitted(fitted)
    assert trees.trees == 60 and trees.depth >= 5
    np.testing.assert_allclose(trees(x[2400:]).numpy()[:, 0], fitted.predict(x[2400:]), atol=1e-6)
    again = GradientBoostedTrees.from_config(trees.get_config())
    again.set_weights(trees.get_weights())
    np.testing.assert_array_equal(again(x[2400:]).numpy(), trees(x[2400:]).numpy())


@pytest.mark.slow
def test_the_boosted_member_beats_its_baseline_on_held_out_home_depot_queries():
    from semmatch_tf.data.loaders import load_home_depot
    from semmatch_tf.data.splits import split_by_query
    from semmatch_tf.ensemble import fit_boosted_member
    from semmatch_tf.evaluation import gain_over_baseline
    from semmatch_tf.models.tfidf import fit_strong_baseline

    data = load_home_depot(real_file("home-depot-search-relevance/train.csv"), limit=8000)
    train, validation, test = split_by_query(data, fractions=(0.7, 0.15, 0.15), seed=3)
    member = fit_boosted_member(train, validation, data.labels, folds=3)
    queries, products = test.frame["query"].tolist(), test.frame["product"].tolist()
    gold = test.frame["grade"].to_numpy()
    ridge = np.clip(fit_strong_baseline(train, validation, "regression").predict(queries, products), 1.0, 3.0)
    result = gain_over_baseline("rmse", gold, member.score(queries, products), ridge, samples=300)
    assert member.preprocessor.facts()["trees"] >= 10
    assert result["gain"] > 0.005 and result["beats"], result


def test_an_ensemble_with_the_boosted_stack_exports_as_one_savedmodel_that_passes_check_export(tmp_path):
    from semmatch_tf.ensemble import ensemble_from_runs
    from semmatch_tf.export import export_model
    from semmatch_tf.export.check import check_export

    run = REPO / "tests" / "fixtures" / "runs" / "bilstm_v0_1"
    ensemble = ensemble_from_runs([run], "stacked", boosted=True)
    assert ensemble.describe()["members"] == [str(run), "boosted_pair_stack"] and ensemble.head == "regression"
    version = export_model(ensemble, tmp_path / "serving", name="with_boosted")
    report = check_export(version, matcher=ensemble)
    assert report["ok"], report["problems"]
    assert report["max_abs_diff"]["serving_default"] < 1e-5 and not report["child_imported_semmatch_tf"]
    metadata = json.loads((version / "assets.extra" / "semmatch_metadata.json").read_text())
    assert metadata["ensemble_members"][1]["model"] == "boosted_pair_stack"
    assert metadata["ensemble_members"][1]["columns"][0] == "baseline"


def test_in_graph_product_types_agree_with_the_python_attribute_extractor_on_real_pairs():
    from semmatch_tf.data.loaders import load_home_depot
    from semmatch_tf.models.tfidf.product_type import (NOT_QUERY_TYPES, NOT_TYPES, learn_types, query_type,
                                                       set_table, title_type)
    from semmatch_tf.query import AttributeExtractor, Gazetteer
    from semmatch_tf.text.units import normalize_units_graph

    frame = load_home_depot(real_file("home-depot-search-relevance/train.csv"), limit=6000).frame
    titles = list(dict.fromkeys(frame["product"].tolist()))
    types = learn_types(titles)
    gazetteer = Gazetteer.learn(titles)
    assert types == sorted(gazetteer.types) and len(types) > 100  # the same known types
    extractor, sample = AttributeExtractor(gazetteer), frame.sample(300, random_state=0)
    table = set_table(types)
    titles_in, queries_in = (normalize_units_graph(tf.constant(sample[c].tolist())) for c in ("product", "query"))
    in_graph_titles = title_type(titles_in, table, set_table(NOT_TYPES)).numpy()
    in_graph_queries = query_type(queries_in, table, set_table(NOT_QUERY_TYPES)).numpy()
    same_titles = np.mean([(extractor.extract(t, title=True)["type"] or "") == g.decode()
                           for t, g in zip(sample["product"], in_graph_titles)])
    # Queries may differ where the Python extractor skips a type made of brand words (no brands in the graph).
    same_queries = np.mean([(extractor.extract(q)["type"] or "") == g.decode()
                            for q, g in zip(sample["query"], in_graph_queries)])
    assert same_titles == 1.0 and same_queries >= 0.97, (same_titles, same_queries)
