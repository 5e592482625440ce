"""Cheap baselines every quality benchmark reports beside the model in the same run.

Pair classification: character n-gram TF-IDF of query and product, with their element-wise product
(which words/n-grams they share) and cosine, into a logistic regression. If our neural models do not
beat this, they are not done. Needs scikit-learn (benchmarks/requirements.txt), not a core dependency.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge

# The strongest cheap baselines live in the package (an ensemble can carry one in its graph).
from semmatch_tf.models.tfidf import StrongPairLogReg, StrongPairRidge  # noqa: F401  (re-exported for the benchmarks)


class CharNgramLogReg:
    """TF-IDF over character 1-4-grams (within word boundaries) -> [q, p, q*p, cos] -> LogReg."""

    def __init__(self, ngram_range=(1, 4), max_features: int = 200_000, C: float = 4.0) -> None:
        self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=ngram_range, lowercase=True,
                                          max_features=max_features, sublinear_tf=True, dtype=np.float32)
        self.classifier = LogisticRegression(C=C, max_iter=2000)

    def _features(self, queries, products):
        q = self.vectorizer.transform(queries)
        p = self.vectorizer.transform(products)
        overlap = q.multiply(p)
        cosine = sp.csr_matrix(np.asarray(overlap.sum(axis=1)))
        return sp.hstack([q, p, overlap, cosine]).tocsr()

    def fit(self, queries, products, labels, sample_weight=None) -> "CharNgramLogReg":
        self.vectorizer.fit(list(queries) + list(products))
        self.classifier.fit(self._features(queries, products), labels, sample_weight=sample_weight)
        return self

    def predict_proba(self, queries, products) -> np.ndarray:
        probabilities = self.classifier.predict_proba(self._features(queries, products))
        # Classes absent from training get probability 0, in the label scheme's order.
        full = np.zeros((probabilities.shape[0], int(max(self.classifier.classes_)) + 1))
        full[:, self.classifier.classes_] = probabilities
        return full


class CharNgramRidge(CharNgramLogReg):
    """The same pair features into a ridge regression: the cheap baseline for graded labels."""

    def __init__(self, ngram_range=(1, 4), max_features: int = 200_000, alpha: float = 3.0) -> None:
        super().__init__(ngram_range, max_features)
        self.classifier = Ridge(alpha=alpha)

    def predict(self, queries, products) -> np.ndarray:
        return self.classifier.predict(self._features(queries, products))


def char_tfidf_cosine(train, scored) -> np.ndarray:
    """Cosine of character 1-3-gram TF-IDF vectors fitted on the training texts: the STS baseline."""
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
    vectorizer.fit(train.frame["query"].tolist() + train.frame["product"].tolist())
    left, right = vectorizer.transform(scored.frame["query"]), vectorizer.transform(scored.frame["product"])
    return np.asarray(left.multiply(right).sum(axis=1)).ravel()


def tfidf_cosine(train, scored, analyzer: str = "char_wb", ngram_range=(1, 3)) -> np.ndarray:
    """Cosine of TF-IDF vectors fitted on the training texts (the STS baseline; char n-grams by
    default, ``analyzer="word"`` for word n-grams). Same as :func:`char_tfidf_cosine` by default."""
    vectorizer = TfidfVectorizer(analyzer=analyzer, ngram_range=ngram_range, sublinear_tf=True)
    vectorizer.fit(train.frame["query"].tolist() + train.frame["product"].tolist())
    left, right = vectorizer.transform(scored.frame["query"]), vectorizer.transform(scored.frame["product"])
    return np.asarray(left.multiply(right).sum(axis=1)).ravel()


def tuned_offsets(validation_probabilities: np.ndarray, validation_labels: np.ndarray, metric) -> np.ndarray:
    """Per-class log-probability offsets (class 0 fixed at 0) that maximise ``metric`` on validation:
    a decision rule tuned for macro-F1 instead of accuracy, chosen without touching the test split."""
    logs = np.log(np.clip(validation_probabilities, 1e-9, 1.0))
    grid = np.round(np.arange(-2.0, 2.01, 0.1), 2)
    classes = validation_probabilities.shape[1]
    best, best_value = np.zeros(classes), -np.inf
    for combo in np.array(np.meshgrid(*[grid] * (classes - 1))).T.reshape(-1, classes - 1):
        offsets = np.concatenate([[0.0], combo])
        value = metric(validation_labels, np.exp(logs + offsets))
        if value > best_value:
            best, best_value = offsets, value
    return best


def with_offsets(probabilities: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Class probabilities with :func:`tuned_offsets` added to their logs: the offset decision rule,
    still as rows whose argmax is the chosen class."""
    return np.exp(np.log(np.clip(probabilities, 1e-9, 1.0)) + offsets)


def unsubsampled_train(config):
    """The whole training split of ``config``'s data, even where the recipe trains on a subsample:
    what the cheap baseline is fitted on (it can afford every pair)."""
    from semmatch_tf import RunConfig
    from semmatch_tf.training import load_splits

    raw = config.to_dict()
    raw["data"]["subsample"] = {}
    return load_splits(RunConfig.from_dict(raw).data)[0]


def strong_baseline_member(config, metric: str, validation_set):
    """The strongest cheap baseline on the whole training split, as an in-graph matcher (ridge for
    ``rmse``, logistic regression for classes; regularisation chosen on validation); ``None`` for
    cosine (STS) recipes, whose baseline is :func:`char_tfidf_cosine`."""
    if metric == "spearman":
        return None
    from semmatch_tf.ensemble import fit_baseline_member

    head = "regression" if metric == "rmse" else "classification"
    return fit_baseline_member(unsubsampled_train(config), validation_set, validation_set.labels, head)


def scores_of(matcher, dataset) -> np.ndarray:
    """A cross-encoder's (or an ensemble's) class probabilities, or its grades, on ``dataset``."""
    outputs = matcher.predict_dataset(dataset)
    return outputs if matcher.head == "classification" else matcher.labels.denormalise(outputs.reshape(-1))


def baseline_outputs(config, member, metric: str, test) -> np.ndarray:
    """The fitted strong baseline's outputs on ``test`` (TF-IDF cosines where ``member`` is None)."""
    if member is None:
        return char_tfidf_cosine(unsubsampled_train(config), test)
    return scores_of(member, test)


def statistic(metric: str):
    """``metric(gold, outputs)`` for class probabilities (accuracy, macro-F1) or grades (rmse, spearman)."""
    from semmatch_tf.evaluation import accuracy, macro_f1, rmse, spearman

    if metric == "accuracy":
        return lambda gold, probabilities: accuracy(gold, probabilities.argmax(axis=1))
    if metric == "macro_f1":
        return lambda gold, probabilities: macro_f1(gold, probabilities.argmax(axis=1), probabilities.shape[1])
    return {"spearman": spearman, "rmse": rmse}[metric]
