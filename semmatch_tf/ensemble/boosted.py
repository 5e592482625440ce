"""A boosted stack of the strongest cheap baseline and match features that exports as one graph.

The baseline (char + word n-gram TF-IDF ridge) knows which n-grams go with relevance but not how a
title covers a query; :class:`~semmatch_tf.models.tfidf.MatchFeatures` says that (coverage, stems,
the last word, numbers, BM25). Gradient-boosted trees over the baseline's score and those features
beat the baseline alone on Home Depot (the ``robust`` benchmark rows). :func:`fit_boosted_member`
fits them and returns a member whose whole computation (n-gram TF-IDF, ridge, match features,
trees) runs in TF ops, so it scores, stacks with networks (``semmatch-tf ensemble --boosted``) and
exports as ONE SavedModel like a trained run.

Honest stacking: the trees are fitted on the baseline's *out-of-fold* scores of the training pairs
(5 folds by query), never on scores of pairs the baseline was fitted on, and the tree count is
chosen on the validation split.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from semmatch_tf.data.schema import LabelScheme, PairDataset
from semmatch_tf.ensemble.stacking import BoostedStacker, out_of_fold_predictions, query_folds
from semmatch_tf.ensemble.trees import GradientBoostedTrees
from semmatch_tf.models.tfidf import (MATCH_FEATURES, MatchFeatures, RawPairInputs, StrongPairRidge, TfidfPairLinear,
                                      fit_strong_baseline)
from semmatch_tf.runs import TrainedMatcher

COLUMNS = ("baseline", "char_cosine", "word_cosine", *MATCH_FEATURES)


@keras.saving.register_keras_serializable(package="semmatch_tf")
class BoostedPairStack(keras.layers.Layer):
    """``{"query", "product"}`` strings -> ``[B, 1]`` unit grade: trees over the baseline's unit
    grade, its char and word TF-IDF cosines and the match features (:data:`COLUMNS`), clipped to [0, 1].

    Args:
        baseline: the fitted :class:`TfidfPairLinear` (a ridge with ``output="grade"``).
        features: the fitted :class:`MatchFeatures`.
        trees: the :class:`GradientBoostedTrees` fitted on those columns (None while
            :func:`fit_boosted_member` computes the columns the trees are fitted on).
    """

    def __init__(self, baseline, features, trees, **kwargs) -> None:
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        # from_config passes each sublayer's serialized config
        layer = lambda x: keras.saving.deserialize_keras_object(x) if isinstance(x, dict) else x  # noqa: E731
        self.baseline, self.features, self.trees = layer(baseline), layer(features), layer(trees)

    def build(self, input_shape=None) -> None:
        self.built = True

    def columns(self, inputs: dict) -> tf.Tensor:
        """``[B, len(COLUMNS)]``: what the trees read."""
        return tf.concat([*self.baseline.with_cosines(inputs), self.features(inputs)], axis=1)

    def call(self, inputs: dict) -> tf.Tensor:
        return tf.clip_by_value(self.trees(self.columns(inputs)), 0.0, 1.0)

    def get_config(self) -> dict:
        return {**super().get_config(), **{name: keras.saving.serialize_keras_object(getattr(self, name))
                                          for name in ("baseline", "features", "trees")}}


def _graph_columns(function, frame: pd.DataFrame, batch_size: int = 1024) -> np.ndarray:
    """Run a ``{"query", "product"} -> [B, K]`` graph function over a frame's pairs in batches."""
    queries, products = frame["query"].astype(str).tolist(), frame["product"].astype(str).tolist()
    parts = [function({"query": tf.constant(queries[i:i + batch_size]), "product": tf.constant(products[i:i + batch_size])})
             for i in range(0, len(queries), batch_size)]
    return np.vstack([p.numpy() for p in parts]) if parts else np.zeros((0, 1), np.float32)


def fit_boosted_member(train: PairDataset, validation: PairDataset, labels: LabelScheme, *, folds: int = 5,
                       threads: int | None = 1) -> TrainedMatcher:
    """Fit the baseline, the match features and the trees; return them as one in-graph member.

    Args:
        train: the training pairs (graded: the trees predict unit grades).
        validation: held-out pairs (other queries): the baseline's ridge alpha and the tree count
            are chosen on them.
        labels: the label scheme (its grade range maps grades to [0, 1]).
        folds: query folds for the baseline's out-of-fold scores on the training pairs.
        threads: OpenMP threads for the trees (:class:`BoostedStacker`).

    Returns:
        A :class:`~semmatch_tf.runs.TrainedMatcher` with a regression head whose model is a
        :class:`BoostedPairStack`; ``preprocessor.facts()`` records what was chosen.

    Examples:
        >>> from semmatch_tf.data.demo import load_demo
        >>> from semmatch_tf.data.splits import split_by_query
        >>> train, validation, _ = split_by_query(load_demo(), seed=0)
        >>> member = fit_boosted_member(train, validation, train.labels, folds=3)
        >>> member.head, member.preprocessor.facts()["model"]
        ('regression', 'boosted_pair_stack')
    """
    low, high = labels.grade_range
    unit = lambda grades: (np.asarray(grades, np.float64) - low) / (high - low)  # noqa: E731
    ridge = fit_strong_baseline(train, validation, "regression")
    baseline = TfidfPairLinear.from_fitted(ridge, grade_range=labels.grade_range, name="strong_pair_ridge")
    frame = train.frame
    out_of_fold = out_of_fold_predictions(lambda: StrongPairRidge(alphas=(ridge.chosen["alpha"],)),
                                          frame["query"].astype(str).tolist(), frame["product"].astype(str).tolist(),
                                          frame["grade"].to_numpy(np.float64), query_folds(frame["query_id"], folds))
    features = MatchFeatures.from_titles(frame["product"].astype(str).tolist(), name="match_features")
    layer = BoostedPairStack(baseline, features, None, name="boosted_pair_stack")
    strings = tf.TensorSpec([None], tf.string)
    columns = tf.function(layer.columns, input_signature=[{"query": strings, "product": strings}])
    # The training pairs' baseline column is out of fold; every other column is the graph's own.
    train_columns = _graph_columns(columns, frame)
    train_columns[:, 0] = unit(out_of_fold)
    held_columns = _graph_columns(columns, validation.frame)
    stacker = BoostedStacker((0.0, 1.0), threads=threads).fit(
        pd.DataFrame(train_columns, columns=COLUMNS), unit(frame["grade"]),
        validation=(pd.DataFrame(held_columns, columns=COLUMNS), unit(validation.frame["grade"])))
    layer.trees = GradientBoostedTrees.from_fitted(stacker.model, name="trees")
    facts = {"model": "boosted_pair_stack", "baseline_alpha": float(ridge.chosen["alpha"]), "columns": list(COLUMNS),
             "trees": int(stacker.chosen["trees"]), "folds": int(folds)}
    return TrainedMatcher(preprocessor=RawPairInputs(facts, name="raw_pair_inputs"), model=layer, labels=labels,
                          head="regression")
