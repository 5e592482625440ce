"""Plots for reports. Every file is written atomically.

Figures are ``matplotlib.figure.Figure`` objects drawn on their own Agg canvas, not pyplot figures:
no display is needed and the process-wide pyplot backend (a notebook's inline one, say) is never
switched, so importing this module changes no global state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from semmatch_tf.atomic import write_file_atomically


def _figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], squeeze: bool = True):
    """``(figure, axes)`` like ``plt.subplots``, on a private Agg canvas."""
    figure = Figure(figsize=figsize, layout="constrained")  # titles, labels and suptitle never overlap
    FigureCanvasAgg(figure)
    return figure, figure.subplots(nrows, ncols, squeeze=squeeze)


def _save(figure, path: str | Path) -> Path:
    return write_file_atomically(Path(path), lambda temporary: figure.savefig(temporary, dpi=110,
                                                                                bbox_inches="tight"))


def plot_training_curves(history: Mapping[str, Sequence[float | None]], path: str | Path, *,
                         best_epoch: int | None = None, monitor: str | None = None) -> Path:
    """One panel per metric, training and validation side by side (``x`` and ``val_x``); with
    ``best_epoch`` (0-based), a dashed line marks the epoch whose weights the run kept."""
    names = [n for n in history if not n.startswith("val_")]
    figure, axes = _figure(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for axis, name in zip(axes[0], names):
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            if key in history:
                values = [np.nan if v is None else v for v in history[key]]
                axis.plot(range(1, len(values) + 1), values, marker="o", label=label)
        if best_epoch is not None:
            axis.axvline(best_epoch + 1, color="grey", linestyle="--", linewidth=1,
                         label=f"best {monitor}" if monitor else "best epoch")
        axis.set_title(name)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.legend()
    figure.suptitle("Training curves" + (f" (kept: epoch {best_epoch + 1}, best {monitor})"
                                         if best_epoch is not None and monitor else ""))
    return _save(figure, path)


def plot_confusion_matrix(matrix, names: Sequence[str], path: str | Path, normalise: bool = True,
                          title: str = "Confusion matrix") -> Path:
    """Heat map of the confusion matrix (rows = true); cells show counts (and row shares)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalise else matrix
    figure, axis = _figure(figsize=(1.2 * len(names) + 2, 1.2 * len(names) + 1.5))
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1 if normalise else None)
    figure.colorbar(image, ax=axis)
    axis.set_xticks(range(len(names)), labels=names, rotation=45, ha="right")
    axis.set_yticks(range(len(names)), labels=names)
    axis.set_title(title + (" (share of each true class)" if normalise else ""))
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    for i in range(len(names)):
        for j in range(len(names)):
            text = f"{int(matrix[i, j])}" + (f"\n{shares[i, j]:.0%}" if normalise else "")
            axis.text(j, i, text, ha="center", va="center", color="white" if shares[i, j] > 0.5 else "black")
    return _save(figure, path)


def plot_metric_bars(table: Mapping[str, Mapping[str, float]], metric: str, path: str | Path, *,
                     by: str = "model") -> Path:
    """Side-by-side bars of one metric for several models (or languages, ``by="language"``):
    ``{name: {metric: value}}``."""
    models = list(table)
    values = [table[m][metric] for m in models]
    figure, axis = _figure(figsize=(1.4 * len(models) + 2, 3.5))
    bars = axis.bar(models, values, color="tab:blue")
    axis.bar_label(bars, fmt="%.3f")
    axis.set_xlabel(by)
    axis.set_ylabel(metric)
    axis.set_title(f"{metric} by {by}")
    axis.tick_params(axis="x", rotation=30)
    return _save(figure, path)


def plot_relevance_curves(relevant, scores, path: str | Path, *, probabilities=None) -> Path:
    """Precision-recall and ROC of ``scores`` separating relevant from other pairs, plus a
    reliability diagram when the model gives ``probabilities`` of relevance (scikit-learn's
    displays, drawn on this module's private figure). The dashed lines are chance."""
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    relevant, scores = np.asarray(relevant, bool), np.asarray(scores, np.float64)
    panels = 3 if probabilities is not None else 2
    figure, axes = _figure(1, panels, figsize=(4.2 * panels, 4.0), squeeze=False)
    pr, roc = axes[0][0], axes[0][1]
    PrecisionRecallDisplay.from_predictions(relevant, scores, ax=pr, name="model")
    pr.axhline(relevant.mean(), color="grey", linestyle="--", linewidth=1, label="chance")
    pr.set_title("Precision-recall (relevant pairs)")
    RocCurveDisplay.from_predictions(relevant, scores, ax=roc, name="model", plot_chance_level=True)
    roc.set_title("ROC (relevant pairs)")
    for axis in (pr, roc):
        axis.legend(loc="lower left" if axis is pr else "lower right")
    if probabilities is not None:
        calibration = axes[0][2]
        CalibrationDisplay.from_predictions(relevant, np.clip(probabilities, 0, 1), n_bins=10, ax=calibration,
                                            name="model", strategy="quantile")
        calibration.set_title("Calibration of P(relevant)")
    figure.suptitle(f"Relevance: {int(relevant.sum())} of {len(relevant)} pairs relevant")
    return _save(figure, path)


def plot_predicted_vs_true(true_grades, predicted_grades, path: str | Path) -> Path:
    """Predicted against judged grade, one (jittered) point per pair, the mean prediction per
    judged grade, and the diagonal a perfect model would lie on."""
    true_grades, predicted_grades = np.asarray(true_grades, np.float64), np.asarray(predicted_grades, np.float64)
    jitter = np.random.default_rng(0).uniform(-0.04, 0.04, len(true_grades)) * max(np.ptp(true_grades), 1e-9)
    figure, axis = _figure(figsize=(5.0, 4.4))
    axis.scatter(true_grades + jitter, predicted_grades, s=6, alpha=0.3, label="pairs")
    levels = np.unique(true_grades)
    means = [predicted_grades[true_grades == g].mean() for g in levels]
    axis.plot(levels, means, marker="o", color="tab:red", label="mean prediction")
    low, high = float(min(true_grades.min(), predicted_grades.min())), float(max(true_grades.max(), predicted_grades.max()))
    axis.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="perfect")
    rmse = float(np.sqrt(np.mean((true_grades - predicted_grades) ** 2)))
    axis.set_title(f"Predicted vs judged grade (RMSE {rmse:.3f})")
    axis.set_xlabel("judged grade")
    axis.set_ylabel("predicted grade")
    axis.legend()
    return _save(figure, path)
