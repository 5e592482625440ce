"""A gradient-boosted stacker over base models' predictions and pair features (issue 18).

A linear stack of models that make the same mistakes gains nothing; a tree model over honest base
predictions *and* features saying how a title matches (:class:`~semmatch_tf.ensemble.PairFeatures`)
can correct the base model where the features disagree with it. Three parts:

* :func:`out_of_fold_predictions`: a base model's predictions on its own training pairs, each from
  a model fitted without that pair's query (``GroupKFold`` by query), so the stacker learns from
  predictions as good as those it will see at serving time, on all training pairs;
* :class:`ProductPrior`: the smoothed mean grade of the same product among training pairs, and
  their count. A product's judged history is known when a shop serves it; on the training pairs
  themselves it is taken out of fold (the same query folds), so a pair never sees its own grade;
* :class:`BoostedStacker`: scikit-learn's ``HistGradientBoostingRegressor`` over those columns,
  its number of trees chosen on validation pairs, predictions clipped to the grade range.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd


def query_folds(groups: Sequence, folds: int = 5) -> np.ndarray:
    """Fold number (0..folds-1) of each row, whole groups (queries) per fold (``GroupKFold``).

    Args:
        groups: one group key (a query or query id) per row.
        folds: how many folds.

    Returns:
        An int array, one fold per row; rows of one group share their fold.

    Examples:
        >>> query_folds(["a", "a", "b", "c", "c", "d"], folds=2).tolist()
        [1, 1, 1, 0, 0, 0]
    """
    from sklearn.model_selection import GroupKFold

    groups = np.asarray(groups)
    assignment = np.empty(len(groups), np.int64)
    for fold, (_, held) in enumerate(GroupKFold(n_splits=folds).split(groups, groups=groups)):
        assignment[held] = fold
    return assignment


def out_of_fold_predictions(make_model: Callable[[], object], queries: Sequence[str], titles: Sequence[str],
                            grades, folds: np.ndarray) -> np.ndarray:
    """Each training pair's prediction by a model fitted on the other folds' pairs.

    Args:
        make_model: returns a fresh model with ``fit(queries, titles, grades)`` and
            ``predict(queries, titles)`` (e.g. the benchmarks' ``StrongPairRidge``).
        queries, titles, grades: the training pairs.
        folds: each pair's fold (:func:`query_folds`: by query, so no query is scored by a model that saw it).

    Returns:
        A float64 array, one out-of-fold prediction per pair.

    Examples:
        >>> class Mean:
        ...     def fit(self, q, t, g): self.mean = float(np.mean(g)); return self
        ...     def predict(self, q, t): return np.full(len(q), self.mean)
        >>> folds = np.array([0, 0, 1])  # query "a" in fold 0, "b" in fold 1
        >>> out_of_fold_predictions(Mean, ["a", "a", "b"], ["x", "y", "z"], [1.0, 2.0, 3.0], folds).tolist()
        [3.0, 3.0, 1.5]
    """
    queries, titles, grades = list(queries), list(titles), np.asarray(grades, np.float64)
    folds = np.asarray(folds)
    predictions = np.empty(len(grades), np.float64)
    for fold in np.unique(folds):
        held, kept = np.flatnonzero(folds == fold), np.flatnonzero(folds != fold)
        model = make_model().fit([queries[i] for i in kept], [titles[i] for i in kept], grades[kept])
        predictions[held] = model.predict([queries[i] for i in held], [titles[i] for i in held])
    return predictions


class ProductPrior:
    """The smoothed mean grade of a product among training pairs, and how many there were.

    ``mean = (sum of the product's grades + smoothing * overall mean) / (count + smoothing)``: a
    product seen once moves little from the overall mean, one seen often is its own mean. Unknown
    products get the overall mean and count 0.

    Args:
        smoothing: pseudo-count of the overall mean.

    Examples:
        >>> prior = ProductPrior(smoothing=1.0).fit(["p1", "p1", "p2"], [3.0, 3.0, 1.0])
        >>> prior.transform(["p1", "p9"]).round(3).values.tolist()
        [[2.778, 2.0], [2.333, 0.0]]
    """

    def __init__(self, smoothing: float = 2.0) -> None:
        self.smoothing = float(smoothing)
        self.mean, self.sums, self.counts = 0.0, pd.Series(dtype=np.float64), pd.Series(dtype=np.float64)

    def fit(self, products: Sequence, grades) -> "ProductPrior":
        """Learn each product's grade sum and count from training pairs.

        Args:
            products: a product id per training pair.
            grades: its grade.

        Returns:
            ``self``.
        """
        frame = pd.DataFrame({"product": np.asarray(products).astype(str), "grade": np.asarray(grades, np.float64)})
        self.mean = float(frame["grade"].mean()) if len(frame) else 0.0
        grouped = frame.groupby("product")["grade"]
        self.sums, self.counts = grouped.sum(), grouped.count().astype(np.float64)
        return self

    def transform(self, products: Sequence) -> pd.DataFrame:
        """``product_prior`` (smoothed mean) and ``product_count`` of each product.

        Args:
            products: product ids.

        Returns:
            A DataFrame with the two columns, one row per id.
        """
        ids = pd.Index(np.asarray(products).astype(str))
        sums = self.sums.reindex(ids).fillna(0.0).to_numpy()
        counts = self.counts.reindex(ids).fillna(0.0).to_numpy()
        prior = (sums + self.smoothing * self.mean) / (counts + self.smoothing)
        return pd.DataFrame({"product_prior": prior, "product_count": counts})

    def out_of_fold(self, products: Sequence, grades, folds: np.ndarray) -> pd.DataFrame:
        """:meth:`transform` of the training pairs themselves, each from the other folds' pairs
        only (a pair never sees its own grade, nor its query's other grades).

        Args:
            products, grades: the training pairs.
            folds: each pair's fold (:func:`query_folds`).

        Returns:
            The columns of :meth:`transform`, one row per training pair.
        """
        products, grades, folds = np.asarray(products).astype(str), np.asarray(grades, np.float64), np.asarray(folds)
        frame = pd.DataFrame(index=range(len(products)), columns=["product_prior", "product_count"], dtype=np.float64)
        for fold in np.unique(folds):
            held, kept = np.flatnonzero(folds == fold), np.flatnonzero(folds != fold)
            part = ProductPrior(self.smoothing).fit(products[kept], grades[kept]).transform(products[held])
            frame.iloc[held] = part.to_numpy()
        return frame


class BoostedStacker:
    """Gradient-boosted trees over stacking columns, trees chosen on validation pairs.

    Args:
        grade_range: ``(low, high)`` predictions are clipped to.
        learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization: the trees'.
        max_iter: the most trees; :meth:`fit` keeps the count with the lowest validation RMSE.
        seed: the trees' random state.
        threads: OpenMP threads for the trees (None: scikit-learn's default, every core). One by
            default: on a shared, loaded machine several threads spin on each other; 50 trees over
            47k Home Depot pairs took 2.7 s with one thread and 16.8 s with two on a busy 2-core VM.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> x = pd.DataFrame({"base": rng.uniform(1, 3, 400)})
        >>> y = np.clip(x["base"] + rng.normal(0, 0.1, 400), 1, 3)
        >>> stacker = BoostedStacker(max_iter=50).fit(x[:300], y[:300], validation=(x[300:], y[300:]))
        >>> float(np.sqrt(np.mean((stacker.predict(x[300:]) - y[300:]) ** 2))) < 0.2
        True
    """

    def __init__(self, grade_range: tuple[float, float] = (1.0, 3.0), *, learning_rate: float = 0.05,
                 max_iter: int = 600, max_leaf_nodes: int = 31, min_samples_leaf: int = 40,
                 l2_regularization: float = 1.0, seed: int = 0, threads: int | None = 1) -> None:
        self.grade_range = tuple(float(g) for g in grade_range)
        self.params = {"learning_rate": learning_rate, "max_leaf_nodes": max_leaf_nodes,
                       "min_samples_leaf": min_samples_leaf, "l2_regularization": l2_regularization,
                       "random_state": seed, "early_stopping": False}
        self.max_iter, self.threads, self.model, self.columns, self.chosen = int(max_iter), threads, None, [], {}

    def fit(self, features: pd.DataFrame, grades, validation: tuple[pd.DataFrame, object] | None = None
            ) -> "BoostedStacker":
        """Fit the trees; with ``validation`` keep the number of trees with its lowest RMSE.

        Args:
            features: one row per training pair, one column per stacking input.
            grades: the training grades.
            validation: ``(features, grades)`` of held-out pairs (other queries) to choose the tree count on.

        Returns:
            ``self``; ``chosen`` holds the tree count and the validation RMSE.
        """
        from threadpoolctl import threadpool_limits

        with threadpool_limits(self.threads):
            return self._fit(features, grades, validation)

    def _fit(self, features: pd.DataFrame, grades, validation) -> "BoostedStacker":
        from sklearn.ensemble import HistGradientBoostingRegressor

        self.columns = list(features.columns)
        grades = np.asarray(grades, np.float64)
        model = HistGradientBoostingRegressor(max_iter=self.max_iter, **self.params).fit(features, grades)
        if validation is None:
            self.model, self.chosen = model, {"trees": self.max_iter}
            return self
        held, truth = validation[0][self.columns], np.asarray(validation[1], np.float64)
        rmses = [float(np.sqrt(np.mean((np.clip(p, *self.grade_range) - truth) ** 2)))
                 for p in model.staged_predict(held)]
        best = int(np.argmin(rmses)) + 1
        self.model = HistGradientBoostingRegressor(max_iter=best, **self.params).fit(features, grades)
        self.chosen = {"trees": best, "validation_rmse": rmses[best - 1]}
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Predicted grades, clipped to ``grade_range``.

        Args:
            features: the columns :meth:`fit` saw (extra columns are ignored).

        Returns:
            A float64 array, one grade per row.
        """
        from threadpoolctl import threadpool_limits

        if self.model is None:
            raise RuntimeError("BoostedStacker.predict before fit")
        with threadpool_limits(self.threads):
            return np.clip(self.model.predict(features[self.columns]), *self.grade_range)
