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

from semmatch_tf.atomic import write_file_atomically


def _figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], squeeze: bool = True):
    """``(figure, axes)`` like ``plt.subplots``, on a private Agg canvas."""
    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)
    return figure, figure.subplots(nrows, ncols, squeeze=squeeze)


def _save(figure, path: str | Path) -> Path:
    return write_file_atomically(Path(path), lambda temporary: figure.savefig(temporary, dpi=110,
                                                                                bbox_inches="tight"))


def plot_training_curves(history: Mapping[str, Sequence[float | None]], path: str | Path) -> Path:
    """One panel per metric, training and validation side by side (``x`` and ``val_x``)."""
    names = [n for n in history if not n.startswith("val_")]
    figure, axes = _figure(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for axis, name in zip(axes[0], names):
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            if key in history:
                values = [np.nan if v is None else v for v in history[key]]
                axis.plot(range(1, len(values) + 1), values, marker="o", label=label)
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.legend()
    figure.suptitle("Training curves")
    return _save(figure, path)


def plot_confusion_matrix(matrix, names: Sequence[str], path: str | Path, normalise: bool = True) -> Path:
    """Heat map of the confusion matrix (rows = true); cells show counts (and row shares)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalise else matrix
    figure, axis = _figure(figsize=(1.2 * len(names) + 2, 1.2 * len(names) + 1.5))
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1 if normalise else None)
    figure.colorbar(image, ax=axis)
    axis.set_xticks(range(len(names)), labels=names, rotation=45, ha="right")
    axis.set_yticks(range(len(names)), labels=names)
    axis.set_title("Confusion matrix" + (" (share of each true class)" if normalise else ""))
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    for i in range(len(names)):
        for j in range(len(names)):
            text = f"{int(matrix[i, j])}" + (f"\n{shares[i, j]:.0%}" if normalise else "")
            axis.text(j, i, text, ha="center", va="center", color="white" if shares[i, j] > 0.5 else "black")
    return _save(figure, path)


def plot_metric_bars(table: Mapping[str, Mapping[str, float]], metric: str, path: str | Path) -> Path:
    """Side-by-side bars of one metric for several models: ``{model: {metric: value}}``."""
    models = list(table)
    values = [table[m][metric] for m in models]
    figure, axis = _figure(figsize=(1.4 * len(models) + 2, 3.5))
    bars = axis.bar(models, values, color="tab:blue")
    axis.bar_label(bars, fmt="%.3f")
    axis.set_ylabel(metric)
    axis.set_title(f"{metric} by model")
    axis.tick_params(axis="x", rotation=30)
    return _save(figure, path)
