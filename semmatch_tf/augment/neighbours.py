"""Near-neighbour words from the catalogue: words that occur in the same product titles.

Two words are neighbours when they share many titles relative to their frequencies (positive
pointwise mutual information over title co-occurrence), e.g. ``"faucet"`` and ``"kitchen"``, or
spelling variants used in one product line. It is the offline stand-in for a thesaurus.
"""

from __future__ import annotations

import collections
import itertools
import math


class CooccurrenceNeighbours:
    """``of(word)`` -> up to ``k`` catalogue neighbours of ``word`` by PPMI (rarer than
    ``min_count`` titles: none).

    Examples:
        >>> titles = ["gas grill cover", "grill cover black", "gas grill", "drill bit set", "cordless drill"] * 3
        >>> n = CooccurrenceNeighbours.fit(titles, min_count=2)
        >>> n.of("cover"), n.of("bit")
        (['black', 'grill', 'gas'], ['set', 'drill'])
    """

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    @classmethod
    def fit(cls, titles, k: int = 5, min_count: int = 5, max_words_per_title: int = 24) -> "CooccurrenceNeighbours":
        counts, pairs, n = collections.Counter(), collections.Counter(), 0
        for title in titles:
            words = sorted(set(w for w in str(title).lower().split() if w.isalnum()))[:max_words_per_title]
            n += 1
            counts.update(words)
            pairs.update(itertools.combinations(words, 2))
        scored = collections.defaultdict(list)
        for (a, b), together in pairs.items():
            if together < min_count or counts[a] < min_count or counts[b] < min_count:
                continue
            pmi = math.log(together * n / (counts[a] * counts[b]))
            if pmi > 0:
                scored[a].append((-pmi, -together, b))
                scored[b].append((-pmi, -together, a))
        return cls({word: [w for _, _, w in sorted(options)[:k]] for word, options in scored.items()})

    def of(self, word: str) -> list[str]:
        return self.table.get(word, [])
