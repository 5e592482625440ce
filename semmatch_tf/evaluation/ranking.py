"""Ranking metrics per query: nDCG@k (graded gains), MRR, MAP, Recall@k, Precision@k.

Two settings:

- **re-ranking** (:func:`ranking_metrics`): every judged (query, product) pair has a model score;
  each query's judged products are sorted by score. Vectorised over all queries at once.
- **retrieval** (:func:`retrieval_metrics`): each query has a ranked list of retrieved ids from a
  whole catalogue; unjudged ids have gain 0; the ideal DCG comes from *all* judged items.

Conventions: ties in score keep input order (stable, so results are reproducible); gains are
``2**g - 1`` ("exponential", the common nDCG form) or ``g`` ("linear"); queries whose ideal DCG is 0
(no positive judgement) are left out of nDCG/Recall/MRR/MAP means and counted as ``skipped``.

Re-ranking means are taken over *rankable* queries only: two or more judged items with different
grades. A query with one judged item (LCQMC, ATEC: one pair per query) or with equal grades scores
nDCG = MRR = 1 under every ordering, so averaging it in reports a perfect ranker where nothing was
ranked; such queries are counted as ``unrankable`` instead, and a set with none rankable reports
no ranking metric at all.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

DEFAULT_KS = (1, 5, 10)


def gain_values(grades: np.ndarray, gain: str = "exponential") -> np.ndarray:
    grades = np.asarray(grades, dtype=np.float64)
    if gain == "exponential":
        return np.power(2.0, grades) - 1.0
    if gain == "linear":
        return grades
    raise ValueError(f"gain must be 'exponential' or 'linear', got {gain!r}")


def _group_ranks(codes: np.ndarray) -> np.ndarray:
    """Position of each row within its (contiguous) group of equal codes: 0, 1, 2, ..."""
    starts = np.r_[0, np.flatnonzero(np.diff(codes)) + 1]
    lengths = np.diff(np.r_[starts, len(codes)])
    return np.arange(len(codes)) - np.repeat(starts, lengths)


def per_query_ranking(query_ids: Sequence, scores: Sequence[float], grades: Sequence[float], *,
                      ks: Sequence[int] = DEFAULT_KS, relevance_threshold: float = 1.0,
                      gain: str = "exponential") -> pd.DataFrame:
    """One row per query: ndcg@k, precision@k, recall@k, mrr, map, judged, relevant, rankable.

    ``grades`` are non-negative relevance grades (0 = irrelevant); an item is *relevant* for
    MRR/MAP/Recall/Precision when its grade is at least ``relevance_threshold``.
    """
    codes, uniques = pd.factorize(pd.Series(list(query_ids)), sort=False)
    scores = np.asarray(scores, dtype=np.float64)
    grades = np.asarray(grades, dtype=np.float64)
    if not (len(codes) == len(scores) == len(grades)):
        raise ValueError("query_ids, scores and grades must have the same length")
    if (grades < 0).any():
        raise ValueError("grades must be non-negative (shift them so the lowest grade is 0)")
    positions = np.arange(len(codes))
    by_score = np.lexsort((positions, -scores, codes))
    by_grade = np.lexsort((positions, -grades, codes))
    sorted_codes = codes[by_score]
    rank = _group_ranks(sorted_codes)
    ideal_rank = _group_ranks(codes[by_grade])
    discount = 1.0 / np.log2(rank + 2.0)
    gains = gain_values(grades[by_score], gain)
    ideal_gains = gain_values(grades[by_grade], gain)
    relevant = grades[by_score] >= relevance_threshold
    n_queries = len(uniques)
    total_relevant = np.bincount(sorted_codes, weights=relevant, minlength=n_queries)
    judged = np.bincount(codes, minlength=n_queries)
    table = {"query_id": uniques.to_numpy(), "judged": judged, "relevant": total_relevant.astype(int),
             "rankable": (judged >= 2) & _grades_differ(codes, grades, n_queries)}
    for k in ks:
        top = rank < k
        dcg = np.bincount(sorted_codes, weights=gains * discount * top, minlength=n_queries)
        ideal = np.bincount(codes[by_grade], weights=ideal_gains * (1.0 / np.log2(ideal_rank + 2.0)) * (ideal_rank < k),
                            minlength=n_queries)
        hits = np.bincount(sorted_codes, weights=relevant * top, minlength=n_queries)
        table[f"ndcg@{k}"] = np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1.0), np.nan)
        table[f"precision@{k}"] = hits / k
        table[f"recall@{k}"] = np.where(total_relevant > 0, hits / np.maximum(total_relevant, 1), np.nan)
    first = np.full(n_queries, np.inf)
    np.minimum.at(first, sorted_codes[relevant], rank[relevant].astype(np.float64))
    table["mrr"] = np.where(np.isfinite(first), 1.0 / (first + 1.0), 0.0)
    cumulative_hits = _group_cumsum(sorted_codes, relevant.astype(np.float64))
    precision_at_hit = np.where(relevant, cumulative_hits / (rank + 1.0), 0.0)
    ap_sum = np.bincount(sorted_codes, weights=precision_at_hit, minlength=n_queries)
    table["map"] = np.where(total_relevant > 0, ap_sum / np.maximum(total_relevant, 1), np.nan)
    table["mrr"] = np.where(total_relevant > 0, table["mrr"], np.nan)
    return pd.DataFrame(table)


def _grades_differ(codes: np.ndarray, grades: np.ndarray, n_queries: int) -> np.ndarray:
    """Per query: do its judged items carry at least two different grades?"""
    lowest, highest = np.full(n_queries, np.inf), np.full(n_queries, -np.inf)
    np.minimum.at(lowest, codes, grades)
    np.maximum.at(highest, codes, grades)
    return highest > lowest


def _group_cumsum(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Running sum of ``values`` restarting at each new (contiguous) code."""
    total = np.cumsum(values)
    starts = np.r_[0, np.flatnonzero(np.diff(codes)) + 1]
    offsets = np.r_[0, total[starts[1:] - 1]]
    lengths = np.diff(np.r_[starts, len(codes)])
    return total - np.repeat(offsets, lengths)


def summarise(per_query: pd.DataFrame) -> dict:
    """Mean of each metric over the queries where it is defined, plus query counts.

    With a ``rankable`` column (re-ranking tables), only rankable queries enter the means and
    ``queries``; the rest are counted in ``unrankable``, and with no rankable query the summary
    holds the counts alone (no metric is better than a meaningless 1.0).
    """
    unrankable = 0
    if "rankable" in per_query:
        unrankable = int((~per_query["rankable"]).sum())
        per_query = per_query[per_query["rankable"]]
    metrics = [c for c in per_query.columns if c not in ("query_id", "judged", "relevant", "rankable")]
    if "rankable" in per_query and not len(per_query):
        return {"queries": 0, "unrankable": unrankable, "skipped": 0}
    summary = {m: float(per_query[m].mean()) if per_query[m].notna().any() else 0.0 for m in metrics}
    summary["queries"] = int(len(per_query))
    if "rankable" in per_query:
        summary["unrankable"] = unrankable
    ndcg_columns = [c for c in metrics if c.startswith("ndcg@")]
    summary["skipped"] = int(per_query[ndcg_columns[0]].isna().sum()) if ndcg_columns else 0
    return summary


def ranking_metrics(query_ids, scores, grades, *, ks: Sequence[int] = DEFAULT_KS,
                    relevance_threshold: float = 1.0, gain: str = "exponential") -> dict:
    """Averaged re-ranking metrics (see :func:`per_query_ranking`), over rankable queries.

    Example:
        >>> summary = ranking_metrics(["a", "a", "b"], [0.9, 0.2, 0.5], [2, 0, 1], ks=(1,))
        >>> summary["ndcg@1"], summary["queries"], summary["unrankable"]  # b: one judged item
        (1.0, 1, 1)
    """
    return summarise(per_query_ranking(query_ids, scores, grades, ks=ks,
                                       relevance_threshold=relevance_threshold, gain=gain))


def per_query_retrieval(ranked_ids: Mapping[object, Sequence], qrels: Mapping[object, Mapping[object, float]], *,
                        ks: Sequence[int] = (10, 100), relevance_threshold: float = 1.0,
                        gain: str = "exponential") -> pd.DataFrame:
    """Full-catalogue retrieval, one row per query: ndcg@k, recall@k, mrr, map (unjudged ids = 0).

    Queries in ``qrels`` that were not retrieved count with empty rankings; queries with no
    positive judgement are left out. The ideal DCG comes from all the query's judged items.
    """
    rows = []
    for query_id, judged in qrels.items():
        grades_by_id = {pid: float(g) for pid, g in judged.items()}
        ideal_grades = np.sort(np.fromiter(grades_by_id.values(), np.float64))[::-1]
        if not (ideal_grades > 0).any():
            continue
        ranking = list(ranked_ids.get(query_id, []))
        grades = np.array([grades_by_id.get(pid, 0.0) for pid in ranking], np.float64)
        relevant = grades >= relevance_threshold
        total_relevant = int((ideal_grades >= relevance_threshold).sum())
        row = {"query_id": query_id}
        for k in ks:
            row[f"ndcg@{k}"] = _ndcg(grades[:k], ideal_grades[:k], gain)
            row[f"recall@{k}"] = float(relevant[:k].sum() / total_relevant) if total_relevant else np.nan
        hit_ranks = np.flatnonzero(relevant)
        row["mrr"] = 1.0 / (hit_ranks[0] + 1) if len(hit_ranks) else 0.0
        precision_at_hits = np.cumsum(relevant)[hit_ranks] / (hit_ranks + 1.0)
        row["map"] = float(precision_at_hits.sum() / total_relevant) if total_relevant else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def retrieval_metrics(ranked_ids: Mapping[object, Sequence], qrels: Mapping[object, Mapping[object, float]], *,
                      ks: Sequence[int] = (10, 100), relevance_threshold: float = 1.0,
                      gain: str = "exponential") -> dict:
    """:func:`per_query_retrieval` averaged over queries, with the count of queries."""
    frame = per_query_retrieval(ranked_ids, qrels, ks=ks, relevance_threshold=relevance_threshold, gain=gain)
    if frame.empty:
        return {"queries": 0}
    summary = {c: float(frame[c].mean()) for c in frame.columns if c != "query_id"}
    summary["queries"] = int(len(frame))
    return summary


def paired_bootstrap(system: pd.DataFrame, baseline: pd.DataFrame, metric: str, *, samples: int = 10_000,
                     confidence: float = 0.95, seed: int = 0) -> dict:
    """How much ``system`` beats ``baseline`` on ``metric``, with a confidence interval.

    Both are per-query tables (:func:`per_query_retrieval`, :func:`per_query_ranking`) over the same
    queries. Queries are resampled with replacement ``samples`` times and the mean per-query
    difference taken each time (a paired bootstrap, as in Sakai 2006 / Smucker et al. 2007): pairing
    removes the between-query variance that dwarfs system differences. Returns ``difference`` (the
    observed mean), ``low``/``high`` (percentile interval), ``p_not_better`` (share of resamples
    where the system does not beat the baseline) and ``queries``.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    joined = system[["query_id", metric]].merge(baseline[["query_id", metric]], on="query_id", how="outer",
                                                suffixes=("_system", "_baseline"), indicator=True)
    if (joined["_merge"] != "both").any():
        missing = joined.loc[joined["_merge"] != "both", "query_id"].head(5).tolist()
        raise ValueError(f"the two tables must hold the same queries; e.g. not in both: {missing}")
    differences = (joined[f"{metric}_system"] - joined[f"{metric}_baseline"]).dropna().to_numpy(np.float64)
    if len(differences) == 0:
        raise ValueError(f"no query has a {metric} in both tables")
    rng = np.random.default_rng(seed)
    means = differences[rng.integers(0, len(differences), size=(samples, len(differences)))].mean(axis=1)
    tail = (1 - confidence) / 2
    return {"difference": float(differences.mean()), "low": float(np.quantile(means, tail)),
            "high": float(np.quantile(means, 1 - tail)), "p_not_better": float((means <= 0).mean()),
            "queries": int(len(differences))}


def _ndcg(grades: np.ndarray, ideal_grades: np.ndarray, gain: str) -> float:
    discount = 1.0 / np.log2(np.arange(2, max(len(ideal_grades), len(grades)) + 2))
    ideal = float((gain_values(ideal_grades, gain) * discount[: len(ideal_grades)]).sum())
    actual = float((gain_values(grades, gain) * discount[: len(grades)]).sum())
    return actual / ideal if ideal > 0 else float("nan")
