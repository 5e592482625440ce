"""Metrics (classification, grades, ranking), reports per language, and plots.

The plots (``plot_*``, matplotlib) are loaded on first use (PEP 562).
"""

import importlib

from semmatch_tf.evaluation.bootstrap import format_gain, gain_over_baseline, paired_bootstrap_statistic
from semmatch_tf.evaluation.classification import (accuracy, classification_report, confusion_matrix, macro_f1,
                                                   precision_recall_f1, tune_class_cuts)
from semmatch_tf.evaluation.ranking import (paired_bootstrap, per_query_ranking, per_query_retrieval, ranking_metrics,
                                            retrieval_metrics)
from semmatch_tf.evaluation.regression import mae, pearson, regression_report, rmse, spearman
from semmatch_tf.evaluation.report import evaluate_predictions, format_report, save_report

_PLOTS = ("plot_confusion_matrix", "plot_metric_bars", "plot_predicted_vs_true", "plot_relevance_curves",
          "plot_training_curves")

__all__ = ["accuracy", "classification_report", "format_gain", "gain_over_baseline", "confusion_matrix", "macro_f1",
           "precision_recall_f1", "tune_class_cuts", "per_query_ranking",
           "per_query_retrieval", "paired_bootstrap", "paired_bootstrap_statistic", "ranking_metrics", "retrieval_metrics", "mae", "pearson",
           "regression_report", "rmse", "spearman", "evaluate_predictions", "format_report", "save_report",
           *_PLOTS]


def __getattr__(name: str):
    if name in _PLOTS:
        return getattr(importlib.import_module("semmatch_tf.evaluation.plots"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
