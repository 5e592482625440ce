"""Augmented copies of a training split, labels preserved by construction."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd

from semmatch_tf.augment.neighbours import CooccurrenceNeighbours
from semmatch_tf.augment.ops import drop_words, keyboard_typo, reorder_fields, replace_neighbours, swap_words
from semmatch_tf.data.schema import PairDataset


def augment_pairs(dataset: PairDataset, config, seed: int = 13, neighbours=None) -> PairDataset:
    """``dataset`` followed by ``config.copies`` augmented copies of each pair.

    A copy keeps every column but the texts: the same label, grade, language, query id and product
    id, so a label can only be what the original pair had. Only the query's surface form changes
    (``swap``, ``drop``, ``typo``, ``neighbour``), and the product's field order (``reorder``);
    query words that also occur in the product are never dropped or replaced, so the match
    evidence a rater saw is kept. Deterministic in ``seed``.

    Args:
        dataset: the training split.
        config: an ``AugmentationConfig`` (``semmatch_tf.training.config``).
        seed: the copies' random seed.
        neighbours: an object with ``of(word) -> list[str]``; default: :class:`CooccurrenceNeighbours`
            fitted on the split's product titles (only when ``config.neighbour > 0``).

    Examples:
        >>> from semmatch_tf.data.demo import load_demo
        >>> from semmatch_tf.training.config import AugmentationConfig
        >>> demo = load_demo()
        >>> more = augment_pairs(demo, AugmentationConfig(copies=1))
        >>> len(more) == 2 * len(demo), label_columns_equal(demo, more)
        (True, True)
    """
    if not config.copies:
        return dataset
    frame = dataset.frame
    if neighbours is None and config.neighbour > 0:
        neighbours = CooccurrenceNeighbours.fit(frame["product"].drop_duplicates())
    rng = random.Random(seed)
    copies = []
    for _ in range(config.copies):
        copy = frame.copy()
        queries, products = [], []
        for query, product in zip(frame["query"], frame["product"]):
            queries.append(augment_query(query, product, config, rng, neighbours))
            products.append(reorder_fields(product, config.reorder, rng))
        copy["query"], copy["product"] = queries, products
        copies.append(copy)
    augmented = pd.concat([frame, *copies], ignore_index=True)
    return PairDataset(augmented, dataset.labels, dataset.name, dataset.source)


def augment_query(query: str, product: str, config, rng: random.Random, neighbours=None) -> str:
    """One augmented query; words shared with ``product`` are kept as they are."""
    shared = frozenset(query.lower().split()) & frozenset(str(product).lower().split())
    text = swap_words(query, config.swap, rng)
    text = drop_words(text, config.drop, rng, keep=shared)
    if neighbours is not None and config.neighbour > 0:
        text = replace_neighbours(text, config.neighbour, rng, neighbours, keep=shared)
    text = _typos_outside(text, shared, config.typo, rng)
    return text if text.strip() else query


def _typos_outside(text: str, shared: frozenset, probability: float, rng: random.Random) -> str:
    words = text.split()
    return " ".join(w if w.lower() in shared else keyboard_typo(w, probability, rng) for w in words)


def label_columns_equal(original: PairDataset, augmented: PairDataset) -> bool:
    """Whether every augmented copy carries its original's label, grade and ids (the invariant)."""
    n, columns = len(original), ["query_id", "product_id", "label", "grade", "language"]
    base = original.frame[columns].to_numpy()
    rest = augmented.frame[columns].to_numpy()
    return len(augmented) % n == 0 and all(np.array_equal(base, rest[i:i + n]) for i in range(0, len(rest), n))
