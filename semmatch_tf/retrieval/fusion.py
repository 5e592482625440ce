"""Combining rankings from several retrievers (BM25 and dense) into one.

* Reciprocal rank fusion (Cormack, Clarke & Buettcher, SIGIR 2009): ``sum_r w_r / (k + rank_r(d))``
  with ranks from 1 and ``k = 60``; a document absent from a list gets nothing from it. It uses
  ranks only, so BM25's unbounded scores and cosines need no calibration.
* Weighted score fusion: each list's scores are min-max normalised per query onto [0, 1] (a list
  whose scores are all equal maps them to 1), then ``sum_r w_r * norm_r(d)``; a document absent
  from a list gets 0 from it (below that list's weakest hit, which maps to 0 too).
* Score interpolation (:func:`interpolate_scores`), for a re-ranker over stage-1 candidates:
  ``(1 - w) * norm(rerank) + w * norm(stage1)`` with the same min-max normalisation over one query's
  candidates. ``w = 0`` is plain re-ranking; a small ``w`` lets the first stage (BM25's exact term
  matches, the bi-encoder's view of the whole catalogue) break the re-ranker's near-ties and temper
  its confident mistakes. Tune ``w`` on validation queries, never on the queries reported.

Both return ``[(key, fused_score), ...]`` best first. Ties are broken by first appearance when
reading the lists in order (all of list 0 best first, then list 1, ...): the first list is the
primary retriever. Keys are anything hashable (product ids, catalogue rows).
"""

from __future__ import annotations

from typing import Hashable, Mapping, Sequence

import numpy as np

RRF_K = 60


def _first_appearance(lists: Sequence[Sequence[Hashable]]) -> dict[Hashable, int]:
    order: dict[Hashable, int] = {}
    for keys in lists:
        for key in keys:
            order.setdefault(key, len(order))
    return order


def _weights(weights: Sequence[float] | None, count: int) -> list[float]:
    if weights is None:
        return [1.0] * count
    if len(weights) != count:
        raise ValueError(f"{len(weights)} weights for {count} rankings")
    return [float(w) for w in weights]


def _sorted(scores: dict[Hashable, float], order: dict[Hashable, int]) -> list[tuple[Hashable, float]]:
    return sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Hashable]], *, k: int = RRF_K,
                           weights: Sequence[float] | None = None) -> list[tuple[Hashable, float]]:
    """Fuse ranked key lists (best first); a key repeated within one list counts at its best rank."""
    if k < 0:
        raise ValueError(f"k must be non-negative, got {k}")
    weights = _weights(weights, len(rankings))
    fused: dict[Hashable, float] = {}
    for weight, keys in zip(weights, rankings):
        seen: set = set()
        for rank, key in enumerate(keys, start=1):
            if key in seen:
                continue
            seen.add(key)
            fused[key] = fused.get(key, 0.0) + weight / (k + rank)
    return _sorted(fused, _first_appearance(rankings))


def min_max_array(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Values mapped linearly onto [0, 1] (float64); all-equal values map to 1."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return values
    low, high = values.min(), values.max()
    if high == low:
        return np.ones_like(values)
    return (values - low) / (high - low)


def min_max(scores: Mapping[Hashable, float]) -> dict[Hashable, float]:
    """Scores mapped linearly onto [0, 1]; all-equal scores map to 1."""
    return dict(zip(scores.keys(), min_max_array(list(scores.values())).tolist()))


def interpolate_scores(primary: Sequence[float] | np.ndarray, secondary: Sequence[float] | np.ndarray,
                       weight: float) -> np.ndarray:
    """``(1 - weight) * norm(primary) + weight * norm(secondary)``, both min-max normalised over the
    given candidates (one query's); ``weight`` in [0, 1]. Scores must be finite."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    primary, secondary = np.asarray(primary, np.float64), np.asarray(secondary, np.float64)
    if primary.shape != secondary.shape:
        raise ValueError(f"{primary.shape} primary scores but {secondary.shape} secondary ones")
    if not (np.isfinite(primary).all() and np.isfinite(secondary).all()):
        raise ValueError("interpolate_scores needs finite scores (a NaN would sort arbitrarily)")
    return (1.0 - weight) * min_max_array(primary) + weight * min_max_array(secondary)


def weighted_score_fusion(score_lists: Sequence[Sequence[tuple[Hashable, float]]], *,
                          weights: Sequence[float] | None = None) -> list[tuple[Hashable, float]]:
    """Fuse ``[(key, score), ...]`` lists (best first) by weighted, per-list min-max scores."""
    weights = _weights(weights, len(score_lists))
    fused: dict[Hashable, float] = {}
    for weight, pairs in zip(weights, score_lists):
        for key, value in min_max(dict(pairs)).items():
            fused[key] = fused.get(key, 0.0) + weight * value
    return _sorted(fused, _first_appearance([[key for key, _ in pairs] for pairs in score_lists]))
