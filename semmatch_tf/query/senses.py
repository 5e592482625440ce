"""Ambiguous queries: find the senses a query's results split into, and diversify the top results.

A *sense* is a product category among a query's first ``depth`` results: the catalogue's
``category`` column when it has one (the demo catalogue's "phones" and "groceries" for "apple" /
"苹果"), else each title's product type from :class:`~semmatch_tf.query.attributes.AttributeExtractor`.
Each result votes for its category with the DCG weight ``1 / log2(rank + 2)``; a
category whose share of the votes reaches ``min_share`` is a sense, and a query with two or more
senses is ambiguous. :func:`diversify` then re-orders the top ``k`` so each sense appears in
proportion to its share (at least once), keeping each sense's own order: "apple" shows phones
*and* apples instead of ten phones, and the senses with their shares are returned so a search page
can ask which one was meant.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

#: A category's share of the votes that earns it a place when diversifying (below the reporting share).
DIVERSIFY_MIN_SHARE = 0.05


def find_senses(categories: Sequence[str | None], titles: Sequence[str] | None = None, *, depth: int = 30,
                min_share: float = 0.2, examples: int = 2, weights: Sequence[float] | None = None) -> list[dict]:
    """The senses of one ranked result list: ``[{"sense", "share", "examples"}]``, largest first.

    Args:
        categories: each result's category, best result first (None: unknown, no vote).
        titles: the results' titles, for each sense's example titles.
        depth: how many results vote.
        min_share: the share of votes that makes a category a sense.
        examples: example titles per sense.
        weights: each result's weight in [0, 1] (e.g. its score over the best score), multiplying its
            rank weight, so that weak matches deep in the list ("5G" phones for "200 g") barely vote.

    Examples:
        >>> find_senses(["phones", "phones", "groceries", "phones", "groceries"], depth=5)
        [{'sense': 'phones', 'share': 0.6992, 'examples': []}, {'sense': 'groceries', 'share': 0.3008, 'examples': []}]
    """
    votes: dict[str, float] = {}
    shown: dict[str, list[str]] = {}
    for rank, category in enumerate(categories[:depth]):
        if category is None or (isinstance(category, float) and math.isnan(category)) or category == "":
            continue
        weight = 1.0 if weights is None else max(0.0, float(weights[rank]))
        votes[str(category)] = votes.get(str(category), 0.0) + weight / math.log2(rank + 2)
        if titles is not None and len(shown.setdefault(str(category), [])) < examples:
            shown[str(category)].append(str(titles[rank]))
    total = sum(votes.values())
    if not total:
        return []
    senses = [{"sense": c, "share": round(v / total, 4), "examples": shown.get(c, [])}
              for c, v in sorted(votes.items(), key=lambda item: (-item[1], item[0])) if v / total >= min_share]
    return senses


def diversify(categories: Sequence[str | None], senses: list[dict], k: int = 10) -> list[int]:
    """A new order of the result positions whose top ``k`` holds every sense in proportion to its
    share (each at least once, when it has results), each sense's results in their own order; the
    rest follow in the original order.

    Examples:
        >>> diversify(["a", "a", "a", "a", "b", "a"], [{"sense": "a", "share": 0.7}, {"sense": "b", "share": 0.3}], k=4)
        [0, 4, 1, 2, 3, 5]
    """
    if len(senses) < 2:
        return list(range(len(categories)))
    wanted = [s["sense"] for s in senses]
    shares = {s["sense"]: s["share"] / sum(x["share"] for x in senses) for s in senses}
    queues = {s: [i for i, c in enumerate(categories) if str(c) == s] for s in wanted}
    order: list[int] = []
    taken = {s: 0 for s in wanted}
    used: set[int] = set()
    for position in range(min(k, len(categories))):
        remaining = [s for s in wanted if taken[s] < len(queues[s])]
        if not remaining:
            break
        slots_left = min(k, len(categories)) - position
        missing = [s for s in remaining if taken[s] == 0]
        if len(missing) >= slots_left:  # every sense once before the top k is full
            choice = missing[0]
        else:
            # the sense furthest below its share, ties: the one whose next result ranks higher
            choice = min(remaining, key=lambda s: (taken[s] - shares[s] * (position + 1), queues[s][taken[s]]))
        index = queues[choice][taken[choice]]
        taken[choice] += 1
        order.append(index)
        used.add(index)
    return order + [i for i in range(len(categories)) if i not in used]


def rank_senses(categories: Sequence[str | None], titles: Sequence[str], scores: Sequence[float], *, k: int = 10,
                depth: int = 30, min_share: float = 0.2, spread: bool = True,
                source: str = "category") -> tuple[list[dict], list[int]]:
    """The senses of one ranked result list and its (maybe diversified) order, as the search path uses them.

    Each result votes with its first-stage score as a share of the best one (weak matches deep in the
    list barely count); the senses reported are those with ``min_share``; when there are two or more
    and ``spread`` is on, the top ``k`` (:func:`diversify`) gives a place to every category with
    :data:`DIVERSIFY_MIN_SHARE` of the votes (not only the reported senses).

    Examples:
        >>> categories = ["toys", "toys", "toys", "cars", "cars", "toys"]
        >>> senses, order = rank_senses(categories, list("abcdef"), [3, 3, 3, 3, 2, 0.1], k=3)
        >>> [(s["sense"], s["share"]) for s in senses], order
        ([('toys', 0.7568), ('cars', 0.2432)], [0, 1, 3, 2, 4, 5])
    """
    stage = np.asarray(scores, np.float64)
    stage = np.where(np.isfinite(stage), stage, 0.0)
    top = stage.max() if len(stage) else 0.0
    weights = np.clip(stage / top, 0.0, 1.0) if top > 0 else np.ones(len(stage))
    senses = find_senses(categories, titles, depth=depth, min_share=min_share, weights=weights)
    for sense in senses:
        sense["source"] = source
    order = list(range(len(categories)))
    if spread and len(senses) >= 2:
        order = diversify(categories, find_senses(categories, depth=depth, min_share=DIVERSIFY_MIN_SHARE,
                                                  weights=weights), k)
    return senses, order
