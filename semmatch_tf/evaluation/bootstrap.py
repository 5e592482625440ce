"""Paired bootstrap for statistics of a whole sample (Spearman, accuracy, macro-F1, RMSE).

:func:`semmatch_tf.evaluation.paired_bootstrap` averages per-query differences; a correlation or a
macro-F1 is not an average of per-item values, so here the items (pairs) are resampled and the
statistic recomputed on each resample for both systems: the interval of the difference is then
paired (both systems see the same resampled items), which removes the items' shared difficulty.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from semmatch_tf.evaluation.classification import accuracy, macro_f1
from semmatch_tf.evaluation.regression import rmse

METRIC_NAMES = {"rmse": "RMSE", "macro_f1": "macro-F1", "accuracy": "accuracy"}


def paired_bootstrap_statistic(statistic: Callable[[np.ndarray, np.ndarray], float], gold, system, baseline, *,
                               samples: int = 1000, confidence: float = 0.95, seed: int = 0,
                               higher_is_better: bool = True) -> dict:
    """How much ``system`` beats ``baseline`` on ``statistic(gold, predictions)``, with an interval.

    Args:
        statistic: ``(gold, predictions) -> float``, e.g. :func:`~semmatch_tf.evaluation.spearman`.
        gold, system, baseline: aligned arrays, one row per item (predictions may be 2-D).
        samples: bootstrap resamples.
        confidence: the interval's coverage.
        higher_is_better: False for errors (RMSE): the gain is then ``baseline - system``.

    Returns:
        ``{"difference", "low", "high", "p_not_better", "items", "system", "baseline"}``, the
        difference oriented so that positive means the system is better.

    Example:
        >>> import numpy as np
        >>> from semmatch_tf.evaluation.regression import spearman
        >>> gold = np.arange(50.0)
        >>> result = paired_bootstrap_statistic(spearman, gold, gold, gold[::-1], samples=200)
        >>> round(result["difference"], 3), result["low"] > 1.9
        (2.0, True)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    gold, system, baseline = np.asarray(gold), np.asarray(system), np.asarray(baseline)
    if not len(gold) == len(system) == len(baseline) or len(gold) == 0:
        raise ValueError(f"gold, system and baseline must be aligned and non-empty, got "
                         f"{len(gold)}, {len(system)}, {len(baseline)} rows")
    sign = 1.0 if higher_is_better else -1.0
    observed_system, observed_baseline = statistic(gold, system), statistic(gold, baseline)
    rng = np.random.default_rng(seed)
    gains = np.empty(samples)
    for sample in range(samples):
        rows = rng.integers(0, len(gold), len(gold))
        gains[sample] = sign * (statistic(gold[rows], system[rows]) - statistic(gold[rows], baseline[rows]))
    tail = (1 - confidence) / 2
    return {"difference": float(sign * (observed_system - observed_baseline)),
            "low": float(np.quantile(gains, tail)), "high": float(np.quantile(gains, 1 - tail)),
            "p_not_better": float((gains <= 0).mean()), "items": int(len(gold)),
            "system": float(observed_system), "baseline": float(observed_baseline)}


def gain_over_baseline(metric: str, gold, run, baseline, *, samples: int = 1000, classes: int | None = None) -> dict:
    """``metric`` (``rmse`` on grades, ``macro_f1`` or ``accuracy`` on class ids) of a run's and a
    baseline's predictions of the same items, the run's gain and its 95% paired-bootstrap interval.

    Returns:
        ``{"metric", "run", "baseline", "gain", "low", "high", "beats", "pairs", "resamples"}``;
        the gain is positive when the run is better, and ``beats`` means the whole interval is above 0.

    Example:
        >>> import numpy as np
        >>> gold = np.array([1.0, 2.0, 3.0, 2.5] * 25)
        >>> result = gain_over_baseline("rmse", gold, gold + 0.1, gold + 0.5, samples=200)
        >>> round(result["gain"], 3), result["beats"]
        (0.4, True)
    """
    if metric == "rmse":
        statistic, higher_is_better = rmse, False
    elif metric == "macro_f1":
        width = classes or int(max(np.max(gold), np.max(run), np.max(baseline))) + 1

        def statistic(g, p):
            return macro_f1(g, p, width)
        higher_is_better = True
    elif metric == "accuracy":
        statistic, higher_is_better = accuracy, True
    else:
        raise ValueError(f"metric must be one of {sorted(METRIC_NAMES)}, got {metric!r}")
    result = paired_bootstrap_statistic(statistic, gold, run, baseline, samples=samples,
                                        higher_is_better=higher_is_better)
    return {"metric": metric, "run": result["system"], "baseline": result["baseline"], "gain": result["difference"],
            "low": result["low"], "high": result["high"], "beats": bool(result["low"] > 0), "pairs": result["items"],
            "resamples": samples}


def format_gain(result: dict) -> str:
    """One line for a :func:`gain_over_baseline` result: both values, the gain and its interval."""
    return (f"{METRIC_NAMES.get(result['metric'], result['metric'])} {result['run']:.4f} against the baseline's "
            f"{result['baseline']:.4f}: gain {result['gain']:+.4f}, 95% interval [{result['low']:+.4f}, "
            f"{result['high']:+.4f}] ({result['resamples']} paired resamples of the {result['pairs']:,} pairs)")
