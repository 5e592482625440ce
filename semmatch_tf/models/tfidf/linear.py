"""The strongest cheap baselines, fitted with scikit-learn (issue 18).

:class:`PairTfidfFeatures` turns (query, product) pairs into sparse TF-IDF pair features;
:class:`StrongPairRidge` (graded labels) and :class:`StrongPairLogReg` (classes) fit a linear model
on them with the regularisation chosen on validation pairs. Every quality benchmark reports them,
and :class:`~semmatch_tf.models.tfidf.layer.TfidfPairLinear` runs a fitted one inside a TF graph
so that it can join an exported ensemble.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import f1_score

# Character n-grams catch spelling variants and units ("18v", "18-volt"); word n-grams catch the
# product type ("wall anchor" vs "wall"); the element-wise product of query and product vectors is
# the overlap, weighted per n-gram by the linear model; a few dense overlap statistics give the
# model what a sparse product cannot (how much of the query is covered at all).
RIDGE_ALPHAS = (3.0, 10.0, 30.0, 100.0, 300.0)
LOGREG_GRID = tuple((C, weights) for C in (1.0, 4.0) for weights in (None, "balanced"))
FEATURE_SETS = ("char+word", "char")


def _words(text: str) -> set[str]:
    return set(str(text).lower().split())


def overlap_statistics(queries, products) -> np.ndarray:
    """Dense pair features: share of query words in the product, of product words in the query,
    whole-query containment, and query/product lengths (log words)."""
    rows = []
    for query, product in zip(queries, products):
        q, p = _words(query), _words(product)
        shared = len(q & p)
        rows.append((shared / max(len(q), 1), shared / max(len(p), 1),
                     float(str(query).lower() in str(product).lower()), np.log1p(len(q)), np.log1p(len(p))))
    return np.asarray(rows, np.float32).reshape(-1, 5)


class PairTfidfFeatures:
    """Char 1-4-gram (within words) and word 1-2-gram TF-IDF of each side, their overlap (element-
    wise product) and cosine per analyser, plus :func:`overlap_statistics`. Fitted on the training
    texts only."""

    def __init__(self, max_features: int = 200_000) -> None:
        self.vectorizers = [
            TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), lowercase=True, max_features=max_features,
                            sublinear_tf=True, dtype=np.float32),
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), lowercase=True, max_features=max_features,
                            sublinear_tf=True, dtype=np.float32, token_pattern=r"(?u)\b\w+\b"),
        ]

    def fit(self, queries, products) -> "PairTfidfFeatures":
        texts = list(queries) + list(products)
        for vectorizer in self.vectorizers:
            vectorizer.fit(texts)
        return self

    def transform(self, queries, products) -> sp.csr_matrix:
        queries, products = list(queries), list(products)
        blocks = []
        for vectorizer in self.vectorizers:
            q, p = vectorizer.transform(queries), vectorizer.transform(products)
            overlap = q.multiply(p).tocsr()
            blocks += [q, p, overlap, sp.csr_matrix(np.asarray(overlap.sum(axis=1)))]
        blocks.append(sp.csr_matrix(overlap_statistics(queries, products)))
        return sp.hstack(blocks).tocsr()

    def width(self) -> int:
        """The number of feature columns :meth:`transform` returns."""
        return sum(3 * len(v.vocabulary_) + 1 for v in self.vectorizers) + 5

    def char_columns(self) -> np.ndarray:
        """Column indices of the char n-gram block and the overlap statistics (no word n-grams:
        for unsegmented Chinese a "word" is the whole text, whose overlap only says "identical")."""
        width = 3 * len(self.vectorizers[0].vocabulary_) + 1
        words = 3 * len(self.vectorizers[1].vocabulary_) + 1
        return np.r_[np.arange(width), np.arange(width + words, width + words + 5)]


class StrongPairRidge:
    """The strongest cheap baseline for graded labels: :class:`PairTfidfFeatures` -> ridge, with
    ``alpha`` chosen by RMSE on the validation pairs (``chosen`` records the grid's RMSEs).

    Examples:
        >>> model = StrongPairRidge(alphas=(1.0,)).fit(["drill", "paint"], ["cordless drill", "white paint"],
        ...                                             [3.0, 2.5])
        >>> model.predict(["drill"], ["cordless drill"]).shape
        (1,)
    """

    def __init__(self, alphas=RIDGE_ALPHAS, max_features: int = 200_000) -> None:
        self.alphas, self.features, self.model, self.chosen = tuple(alphas), PairTfidfFeatures(max_features), None, {}

    def fit(self, queries, products, grades, validation=None) -> "StrongPairRidge":
        """``validation``: ``(queries, products, grades)`` to choose alpha on (without it, the first)."""
        train = self.features.fit(queries, products).transform(queries, products)
        grades = np.asarray(grades, np.float64)
        if validation is None or len(self.alphas) == 1:
            self.model = Ridge(alpha=self.alphas[0]).fit(train, grades)
            self.chosen = {"alpha": self.alphas[0]}
            return self
        held = self.features.transform(validation[0], validation[1])
        truth = np.asarray(validation[2], np.float64)
        best, rmses = None, {}
        for alpha in self.alphas:
            model = Ridge(alpha=alpha).fit(train, grades)
            rmses[alpha] = float(np.sqrt(np.mean((model.predict(held) - truth) ** 2)))
            if best is None or rmses[alpha] < rmses[best[0]]:
                best = (alpha, model)
        self.model, self.chosen = best[1], {"alpha": best[0], "validation_rmse": rmses}
        return self

    def predict(self, queries, products) -> np.ndarray:
        return self.model.predict(self.features.transform(queries, products))


class StrongPairLogReg:
    """The strongest cheap baseline for classes: :class:`PairTfidfFeatures` -> logistic regression,
    the feature set (char + word n-grams, or char only), ``C`` and class weights (none / balanced)
    chosen by macro-F1 on the validation pairs."""

    def __init__(self, grid=LOGREG_GRID, feature_sets=FEATURE_SETS, max_features: int = 200_000) -> None:
        self.grid, self.feature_sets = tuple(grid), tuple(feature_sets)
        self.features, self.model, self.chosen, self.columns = PairTfidfFeatures(max_features), None, {}, None

    def fit(self, queries, products, labels, validation=None) -> "StrongPairLogReg":
        full = self.features.fit(queries, products).transform(queries, products)
        labels = np.asarray(labels)
        grid = [(f, C, w) for f in self.feature_sets for C, w in self.grid]
        grid = grid if validation is not None else grid[:1]
        held = self.features.transform(validation[0], validation[1]) if validation is not None else None
        best, scores = None, {}
        for feature_set, C, weights in grid:
            columns = None if feature_set == "char+word" else self.features.char_columns()
            pick = (lambda m: m) if columns is None else (lambda m, c=columns: m[:, c])
            model = LogisticRegression(C=C, class_weight=weights, max_iter=1000).fit(pick(full), labels)
            key = f"{feature_set},C={C},class_weight={weights}"
            if held is None:
                best = (key, (feature_set, C, weights), model, columns)
                break
            scores[key] = float(f1_score(validation[2], model.predict(pick(held)), average="macro"))
            if best is None or scores[key] > scores[best[0]]:
                best = (key, (feature_set, C, weights), model, columns)
        _, (feature_set, C, weights), self.model, self.columns = best
        self.chosen = {"features": feature_set, "C": C, "class_weight": weights, "validation_macro_f1": scores}
        return self

    def predict_proba(self, queries, products) -> np.ndarray:
        features = self.features.transform(queries, products)
        probabilities = self.model.predict_proba(features if self.columns is None else features[:, self.columns])
        full = np.zeros((probabilities.shape[0], int(max(self.model.classes_)) + 1))
        full[:, self.model.classes_] = probabilities
        return full


def fit_strong_baseline(train, validation, head: str) -> StrongPairRidge | StrongPairLogReg:
    """The strongest cheap baseline for a head, fitted on the pairs of ``train`` (a ``PairDataset``)
    with its settings chosen on those of ``validation`` (an empty one: the first setting):
    :class:`StrongPairRidge` on the grades (``head="regression"``) or :class:`StrongPairLogReg` on
    the class ids (``"classification"``)."""
    if head not in ("regression", "classification"):
        raise ValueError(f"head must be 'regression' or 'classification', got {head!r}")
    column, model = ("grade", StrongPairRidge()) if head == "regression" else ("label", StrongPairLogReg())
    pairs = lambda d: (d.frame["query"].tolist(), d.frame["product"].tolist())  # noqa: E731
    held = (*pairs(validation), validation.frame[column].to_numpy()) if len(validation) else None
    return model.fit(*pairs(train), train.frame[column].to_numpy(), validation=held)
