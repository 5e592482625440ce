"""Metrics for graded predictions: RMSE, MAE, Pearson and Spearman correlation."""

from __future__ import annotations

import numpy as np
import pandas as pd


def rmse(y_true, y_pred) -> float:
    diff = np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)
    return float(np.sqrt(np.mean(diff**2))) if diff.size else 0.0


def mae(y_true, y_pred) -> float:
    diff = np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)
    return float(np.mean(np.abs(diff))) if diff.size else 0.0


def pearson(x, y) -> float:
    """Pearson correlation; 0.0 when either side is constant (undefined correlation)."""
    x = np.asarray(x, np.float64) - np.mean(x)
    y = np.asarray(y, np.float64) - np.mean(y)
    denominator = np.sqrt((x**2).sum() * (y**2).sum())
    return float((x * y).sum() / denominator) if denominator > 0 else 0.0


def spearman(x, y) -> float:
    """Spearman correlation: Pearson of the ranks, ties given their average rank."""
    return pearson(pd.Series(np.asarray(x)).rank(method="average").to_numpy(),
                   pd.Series(np.asarray(y)).rank(method="average").to_numpy())


def regression_report(y_true, y_pred) -> dict:
    return {"rmse": rmse(y_true, y_pred), "mae": mae(y_true, y_pred), "pearson": pearson(y_true, y_pred),
            "spearman": spearman(y_true, y_pred)}
