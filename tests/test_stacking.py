"""The boosted stacker's parts on a real slice of Home Depot (issue 18): pair features on known
strings, a product prior that only ever sees training grades, out-of-fold predictions by query, and
a stacker that a duplicated base column does not change."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from conftest import real_file


@functools.lru_cache(maxsize=None)
def _slice():
    """The first 3,000 Home Depot pairs, split by query into 2,400 / 600 (fitting / held out)."""
    from semmatch_tf import load_dataset

    frame = load_dataset("home_depot", str(real_file("home-depot-search-relevance/train.csv")), limit=3000).frame
    queries = frame["query"].drop_duplicates().sample(frac=1.0, random_state=0)
    held = set(queries.iloc[: len(queries) // 5])
    inside = frame["query"].isin(held)
    return frame[~inside].reset_index(drop=True), frame[inside].reset_index(drop=True)


@functools.lru_cache(maxsize=None)
def _features():
    from semmatch_tf.ensemble import PairFeatures

    train, _ = _slice()
    return PairFeatures().fit(train["query"].tolist(), train["product"].tolist())


def _row(query: str, title: str) -> pd.Series:
    return _features().transform([query], [title]).iloc[0]


def test_pair_features_on_known_home_depot_strings():
    # Kaggle's own example: "angle bracket" (3.0) shares "angle" and not the type word "bracket".
    row = _row("angle bracket", "Simpson Strong-Tie 12-Gauge Angle")
    assert (row["word_share"], row["last_word_in_title"], row["first_word_in_title"]) == (0.5, 0, 1)
    assert row["phrase_match"] == 0
    # "deck over" vs "DeckOver": no whole word shared, the 4-letter prefix "deck" is.
    row = _row("deck over", "BEHR Premium Textured DeckOver 1-gal. #SC-141 Tugboat Wood and Concrete Coating")
    assert (row["word_share"], row["prefix_share"], row["compound_share"]) == (0.0, 0.5, 0.5)
    # A swapped-letter brand ("roybi") is one edit from the title's "Ryobi".
    row = _row("roybi radio", "Ryobi ONE+ 18-Volt Compact Radio with Bluetooth Wireless Technology (Tool-Only)")
    assert (row["word_share"], row["fuzzy_share"], row["last_word_in_title"]) == (0.5, 1.0, 1)
    # Units written differently agree after normalisation: "5gal" is the title's "5-gal.".
    row = _row("5gal bucket", "Leaktite 5-gal. Homer Leakproof Lid")
    assert (row["number_share"], row["number_contradict"], row["size_agree"], row["size_contradict"]) == (1, 0, 1, 0)
    row = _row("24in vanity", "Glacier Bay Lancaster 24 in. Vanity in White with Alpine Vanity Top in White")
    assert (row["word_share"], row["last_word_in_title"], row["size_agree"]) == (1.0, 1, 1)
    # A size the title contradicts (18 in. wanted, 25 in. offered): the number and the size say so.
    row = _row("grafton 18 in. vanity", "Home Decorators Collection Grafton 25 in. Vanity in Crimson with Granite "
               "Vanity Top in Beige")
    assert (row["number_contradict"], row["size_contradict"], row["size_agree"]) == (1, 1, 0)
    # Brand learned from the slice's titles; the voltage contradicts.
    row = _row("dewalt 7.2volt battery", "DEWALT 20-Volt 3Ah Max Lithium-Ion Battery (2-Pack)")
    assert (row["brand_agree"], row["size_contradict"], row["last_word_in_title"]) == (1, 1, 1)
    # BM25 and the cosines order a matching title above an unrelated one.
    frame = _features().transform(["cordless drill"] * 2, ["RYOBI 18-Volt ONE+ Cordless Drill",
                                                           "BEHR Premium Plus 1-gal. Paint"])
    columns = ["bm25", "bm25_share", "char_cosine", "word_cosine"]
    assert (frame.loc[0, columns] > frame.loc[1, columns]).all()


def test_pair_features_are_fitted_on_training_texts_only_and_aligned():
    from semmatch_tf.ensemble.pair_features import FEATURE_NAMES

    train, held = _slice()
    frame = _features().transform(held["query"].tolist(), held["product"].tolist())
    assert list(frame.columns) == list(FEATURE_NAMES) and len(frame) == len(held)
    assert np.isfinite(frame.to_numpy()).all()
    # An unseen query word counts as unseen: the idf comes from the training titles only.
    assert _row("zzqxv", "Simpson Strong-Tie 12-Gauge Angle")["query_unseen_share"] == 1.0
    with pytest.raises(ValueError, match="aligned"):
        _features().transform(["a", "b"], ["c"])


def test_the_product_prior_uses_only_training_pairs():
    from semmatch_tf.ensemble import ProductPrior, query_folds

    train, held = _slice()
    prior = ProductPrior(smoothing=2.0).fit(train["product_id"], train["grade"])
    values = prior.transform(held["product_id"])
    seen = held["product_id"].isin(set(train["product_id"])).to_numpy()
    assert 0 < seen.sum() < len(held)  # the slice holds both kinds
    # A product no training pair judged: the training mean, count 0, whatever its held-out grades.
    assert np.allclose(values["product_prior"][~seen], train["grade"].mean())
    assert (values["product_count"][~seen] == 0).all()
    one = train["product_id"].iloc[0]
    grades = train.loc[train["product_id"] == one, "grade"]
    expected = (grades.sum() + 2.0 * train["grade"].mean()) / (len(grades) + 2.0)
    assert prior.transform([one]).iloc[0].tolist() == pytest.approx([expected, len(grades)])
    # Out of fold on the training pairs: no pair sees its own grade or its query's others.
    folds = query_folds(train["query_id"], folds=5)
    oof = prior.out_of_fold(train["product_id"], train["grade"], folds)
    changed = train["grade"].to_numpy().copy()
    changed[folds == 0] = 3.0 - changed[folds == 0] + 1.0  # flip fold 0's grades
    again = prior.out_of_fold(train["product_id"], changed, folds)
    assert np.allclose(again.loc[folds == 0].to_numpy(), oof.loc[folds == 0].to_numpy())
    assert not np.allclose(again.loc[folds != 0, "product_prior"], oof.loc[folds != 0, "product_prior"])


def test_out_of_fold_predictions_never_score_a_query_the_model_saw():
    from semmatch_tf.ensemble import out_of_fold_predictions, query_folds

    train, _ = _slice()
    folds = query_folds(train["query_id"], folds=5)
    assert train.groupby("query_id").apply(lambda g: folds[g.index].min() == folds[g.index].max(),
                                           include_groups=False).all()

    class Memory:  # remembers the grade of every (query, title) it was fitted on, else the mean
        def fit(self, queries, titles, grades):
            self.seen, self.mean = dict(zip(zip(queries, titles), grades)), float(np.mean(grades))
            return self

        def predict(self, queries, titles):
            return np.array([self.seen.get(pair, self.mean) for pair in zip(queries, titles)])

    oof = out_of_fold_predictions(Memory, train["query"], train["product"], train["grade"], folds)
    assert not np.isin(oof, train["grade"].unique()).any()  # only fold means: no pair's own grade


def test_a_stacker_over_two_identical_base_predictions_scores_as_one():
    from semmatch_tf.ensemble import BoostedStacker

    train, held = _slice()
    def base(frame):
        return _features().transform(frame["query"].tolist(), frame["product"].tolist())[["char_cosine"]]

    one, two = base(train), base(train).assign(copy=lambda f: f["char_cosine"])
    held_one, held_two = base(held), base(held).assign(copy=lambda f: f["char_cosine"])
    single = BoostedStacker(max_iter=30).fit(one, train["grade"], validation=(held_one, held["grade"]))
    double = BoostedStacker(max_iter=30).fit(two, train["grade"], validation=(held_two, held["grade"]))
    assert single.chosen == double.chosen
    np.testing.assert_allclose(double.predict(held_two), single.predict(held_one))
    predicted = single.predict(held_one)
    assert predicted.std() > 0 and ((predicted >= 1) & (predicted <= 3)).all()
    # The trees learn something real: better than predicting the training mean on held-out queries.
    rmse = lambda p: float(np.sqrt(np.mean((p - held["grade"].to_numpy()) ** 2)))  # noqa: E731
    assert rmse(single.predict(held_one)) < rmse(np.full(len(held), train["grade"].mean()))


def test_an_encoder_adds_the_semantic_cosine_each_distinct_text_embedded_once():
    from semmatch_tf.ensemble import PairFeatures
    from semmatch_tf.ensemble.pair_features import FEATURE_NAMES

    class Letters:  # unit vectors of letter counts; records what it was asked to embed
        def __init__(self):
            self.seen = []

        def encode(self, texts, side="query"):
            self.seen.append((side, list(texts)))
            vectors = np.array([[t.lower().count(c) for c in "abcdefghijklmnopqrstuvwxyz"] for t in texts], np.float32)
            return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)

    train, _ = _slice()
    encoder = Letters()
    features = PairFeatures(encoder=encoder).fit(train["query"].head(200).tolist(), train["product"].head(200).tolist())
    queries, titles = ["deck over", "deck over", "angle"], ["DeckOver", "Angle", "Angle"]
    frame = features.transform(queries, titles)
    assert list(frame.columns) == [*FEATURE_NAMES, "semantic_cosine"]
    assert encoder.seen == [("query", ["deck over", "angle"]), ("product", ["DeckOver", "Angle"])]
    # "deck over" and "deckover" have the same letters; with "angle" they share only e (2 x 1).
    assert frame["semantic_cosine"].tolist() == pytest.approx([1.0, 2 / np.sqrt(50), 1.0], abs=1e-6)
