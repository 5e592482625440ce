"""Every cross-encoder run measured against the strongest cheap baseline on its own test pairs.

A network that does not beat character n-gram TF-IDF with a linear model is not worth serving:
the baseline is cheaper to train, to run and to explain. So, unless ``training.compare_baseline``
is off, the trainer fits that baseline on the run's training split (its regularisation chosen on
the validation split), scores the pairs the run is evaluated on, and writes the comparison into
``report.json`` (``"baseline"``) and the model card, with a 95% paired-bootstrap interval of the
run's gain. A run "beats" the baseline only when the whole interval is above 0.

The baseline (:mod:`semmatch_tf.models.tfidf`) is the one the benchmarks use: ``char_wb`` 1-4-gram
and word 1-2-gram TF-IDF of each side and of their overlap, plus overlap statistics, then ridge
regression on the grades (regression head: compared by RMSE) or logistic regression on the classes
with class weights chosen on validation (classification head: compared by macro-F1, accuracy
beside it). ``semmatch-tf ensemble --model RUN --baseline`` ships the two together.

Examples:
    >>> from semmatch_tf.data.demo import load_demo
    >>> from semmatch_tf.data.splits import split_by_query
    >>> train, validation, test = split_by_query(load_demo(), seed=0)
    >>> outputs = test.labels.normalise(test.frame["grade"].to_numpy())  # a perfect run's unit grades
    >>> result = compare_with_baseline(train, validation, test, "regression", test.labels, outputs, samples=100)
    >>> result["model"], result["metric"], round(result["run"], 6), result["beats"]
    ('strong_pair_ridge', 'rmse', 0.0, True)
"""

from __future__ import annotations

import numpy as np

from semmatch_tf.data.schema import LabelScheme, PairDataset
from semmatch_tf.evaluation import gain_over_baseline
from semmatch_tf.models.heads import predicted_grades
from semmatch_tf.models.tfidf import fit_strong_baseline

ABOUT = ("char_wb 1-4 + word 1-2 n-gram TF-IDF of query, product and their overlap, plus overlap "
         "statistics; fitted on the training split, regularisation chosen on the validation split")


def compare_with_baseline(train: PairDataset, validation: PairDataset, dataset: PairDataset, head: str,
                          labels: LabelScheme, outputs: np.ndarray, *, samples: int = 1000) -> dict:
    """The run's ``outputs`` on ``dataset`` against the strongest cheap baseline on the same pairs.

    Args:
        train, validation: the run's training pairs (before augmentation) and validation pairs.
        dataset: the pairs the run is evaluated on (its test split).
        head: the run's head (``regression`` or ``classification``).
        labels: the run's label scheme.
        outputs: the run's outputs on ``dataset`` (unit grades or class probabilities).
        samples: bootstrap resamples.

    Returns:
        ``{"model", "about", "chosen", "metric", "run", "baseline", "gain", "low", "high", "beats",
        "pairs", "resamples"}`` (gain oriented so that positive means the run is better), plus
        ``"accuracy"`` (the same comparison by accuracy) for a classification head.
    """
    model = fit_strong_baseline(train, validation, head)
    texts = dataset.frame["query"].tolist(), dataset.frame["product"].tolist()
    if head == "regression":
        low, high = labels.grade_range
        result = gain_over_baseline("rmse", dataset.frame["grade"].to_numpy(np.float64),
                                    predicted_grades(outputs, head, labels),
                                    np.clip(model.predict(*texts), low, high), samples=samples)
        name = "strong_pair_ridge"
    else:
        gold, classes = dataset.frame["label"].to_numpy(), np.argmax(outputs, axis=1)
        baseline = np.argmax(model.predict_proba(*texts), axis=1)
        result = gain_over_baseline("macro_f1", gold, classes, baseline, samples=samples, classes=labels.num_classes)
        result["accuracy"] = gain_over_baseline("accuracy", gold, classes, baseline, samples=samples)
        name = "strong_pair_logreg"
    chosen = {key: value for key, value in model.chosen.items() if not isinstance(value, dict)}
    return {"model": name, "about": ABOUT, "chosen": chosen, **result}
