"""Splits grouped by query: no query appears in two splits, so a test score measures matching,
not memory of the query. Deterministic for a seed."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from semmatch_tf.data.schema import PairDataset

SPLIT_NAMES = ("train", "validation", "test")


def split_by_query(dataset: PairDataset, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                   names: Sequence[str] = SPLIT_NAMES) -> tuple[PairDataset, ...]:
    """Split into ``len(fractions)`` parts of about those fractions of *pairs*, whole queries each.

    Queries are shuffled with ``seed`` and assigned greedily to the split whose share of pairs is
    furthest below its target, so splits hit their fractions closely even when queries have very
    different numbers of judged products. A zero fraction gives an empty split.

    Args:
        dataset: the judged pairs.
        fractions: each part's share of the pairs; non-negative, summing to 1.
        seed: the shuffle's seed (the same seed gives the same parts).
        names: the parts' names, appended to ``dataset.name`` (``"demo/train"``).

    Returns:
        One :class:`PairDataset` per fraction, in order.

    Examples:
        >>> from semmatch_tf import load_demo
        >>> train, validation, test = split_by_query(load_demo(), (0.8, 0.1, 0.1), seed=0)
        >>> test.name, set(train.frame["query_id"]) & set(test.frame["query_id"])
        ('demo/test', set())
    """
    fractions = np.asarray(fractions, dtype=np.float64)
    if (fractions < 0).any() or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(f"fractions must be non-negative and sum to 1, got {list(fractions)}")
    if len(names) < len(fractions):
        names = [f"split{i}" for i in range(len(fractions))]
    query_ids = dataset.frame["query_id"].to_numpy()
    unique, codes, counts = np.unique(query_ids, return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(unique))
    assignment = np.empty(len(unique), dtype=np.int64)
    filled = np.zeros(len(fractions))
    targets = fractions * len(query_ids)
    for query in order:
        deficit = np.where(fractions > 0, (targets - filled) / np.maximum(targets, 1e-12), -np.inf)
        split = int(np.argmax(deficit))
        assignment[query] = split
        filled[split] += counts[query]
    row_split = assignment[codes]
    return tuple(dataset.subset(np.flatnonzero(row_split == i), f"{dataset.name}/{names[i]}")
                 for i in range(len(fractions)))


def train_test_by_query(dataset: PairDataset, test_fraction: float = 0.2, seed: int = 0) -> tuple[PairDataset, PairDataset]:
    train, test = split_by_query(dataset, (1.0 - test_fraction, test_fraction), seed, names=("train", "test"))
    return train, test


def subsample_queries(dataset: PairDataset, max_pairs: int, seed: int = 0) -> PairDataset:
    """At most ``max_pairs`` pairs, taken as whole queries in a seeded random order.

    For quick experiments on slow hardware (a BERT on two CPU cores): whole queries are kept so a
    subsampled split still ranks each query's judged products, and the other splits are untouched.
    """
    if max_pairs < 1:
        raise ValueError(f"max_pairs must be positive, got {max_pairs}")
    if len(dataset) <= max_pairs:
        return dataset
    query_ids = dataset.frame["query_id"].to_numpy()
    unique, codes, counts = np.unique(query_ids, return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(unique))
    kept = order[np.cumsum(counts[order]) <= max_pairs]
    rows = np.flatnonzero(np.isin(codes, kept))
    return dataset.subset(rows, dataset.name)
