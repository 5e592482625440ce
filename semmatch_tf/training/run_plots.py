"""The figures a finished run writes to ``plots/``: how training went, and what the model does on
the held-out split, each with a title and labelled axes (:mod:`semmatch_tf.evaluation.plots`).

- ``training_curves.png``: every metric per epoch, the kept (best) epoch marked;
- ``confusion_matrix.png``: classes for a classification head; for a regression head the same
  table over grade buckets (each predicted grade taken to its nearest class), titled so;
- ``relevance_curves.png``: precision-recall and ROC of the score separating relevant pairs
  (gain at least half the largest, as the ranking metrics count them), and for a classification
  head the calibration of its P(relevant);
- ``predicted_vs_true.png``: predicted against judged grade;
- ``by_language.png``: the headline metric per language.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semmatch_tf.data.schema import PairDataset
from semmatch_tf.evaluation.plots import (plot_confusion_matrix, plot_metric_bars, plot_predicted_vs_true,
                                          plot_relevance_curves, plot_training_curves)
from semmatch_tf.training.hparams import best_epoch, plain_history


def write_run_plots(plots: Path, *, history: dict, monitor: str, report: dict, dataset: PairDataset | None = None,
                    predicted_grades: np.ndarray | None = None, probabilities: np.ndarray | None = None,
                    head: str | None = None) -> list[Path]:
    """Write the figures that the run's data allows; returns their paths."""
    written = []
    if history:
        written.append(plot_training_curves(plain_history(history), plots / "training_curves.png",
                                            best_epoch=best_epoch(history, monitor), monitor=monitor))
    matrix = report.get("classification", {}).get("confusion_matrix")
    if matrix is not None and dataset is not None:
        title = "Confusion matrix" if head == "classification" else "Grade buckets (predicted grade → nearest class)"
        written.append(plot_confusion_matrix(np.asarray(matrix), list(dataset.labels.names),
                                             plots / "confusion_matrix.png", title=title))
    if dataset is not None and predicted_grades is not None and len(dataset):
        written += _held_out_figures(plots, dataset, np.asarray(predicted_grades, np.float64), probabilities)
    languages = report.get("by_language", {})
    metric = "ndcg@10" if any("ndcg@10" in b.get("ranking", {}) for b in languages.values()) else "accuracy"
    table = {language: {metric: _metric(block, metric)} for language, block in sorted(languages.items())}
    table = {language: row for language, row in table.items() if row[metric] is not None}
    if table:
        written.append(plot_metric_bars(table, metric, plots / "by_language.png", by="language"))
    return written


def _held_out_figures(plots: Path, dataset: PairDataset, predicted: np.ndarray, probabilities) -> list[Path]:
    labels = dataset.labels
    low, high = labels.grade_range
    judged = dataset.frame["grade"].to_numpy(np.float64)
    relevant = judged - low >= (high - low) / 2
    written = [plot_predicted_vs_true(judged, predicted, plots / "predicted_vs_true.png")]
    if 0 < relevant.sum() < len(relevant):
        chance = None
        if probabilities is not None:  # P(relevant): the mass on the classes that count as relevant
            relevant_classes = np.asarray(labels.grades, np.float64) - low >= (high - low) / 2
            chance = np.asarray(probabilities, np.float64)[:, relevant_classes].sum(axis=1)
        written.append(plot_relevance_curves(relevant, predicted, plots / "relevance_curves.png",
                                             probabilities=chance))
    return written


def _metric(block: dict, metric: str):
    if metric == "accuracy":
        return block.get("classification", {}).get("accuracy")
    return block.get("ranking", {}).get(metric)
