"""Hand-made match features of a (query, title) pair, for a gradient-boosted stacker (issue 18).

The Kaggle Home Depot winners stacked their models with features that say *how* a title matches a
query, which a bag of n-grams into a linear model cannot say: how much of the query the title
covers, whether the query's last word (usually the product type) is there, whether numbers, sizes,
brands and colours agree, a BM25 score. :class:`PairFeatures` computes them from titles alone:

* coverage: share of the query's words, stems, 4-letter prefixes and bigrams in the title; words
  found within one edit (typos: "lumder" is "lumber") or as part of a compound ("deck" in
  "deckover"); the idf-weighted share and the idf of the rarest word missing; the whole query as a
  phrase; its last and first word; the first matching position in the title;
* numbers and units (after :func:`semmatch_tf.query.normalize_units`): how many numbers the query
  has, the share found in the title, a contradiction flag (both have numbers, none shared);
* attributes: the 12 agree/contradict flags of :func:`semmatch_tf.query.agreement` with an
  :class:`~semmatch_tf.query.AttributeExtractor` whose gazetteer is learned from the fitting titles;
* BM25 of the query against the title (idf and average length from the fitting titles), raw and
  divided by the query's total idf; the query's mean idf and share of words unseen in the titles;
* cosine of character 1-4-gram and word TF-IDF vectors; query and title lengths;
* with an ``encoder`` (a pretrained sentence encoder used zero-shot, e.g.
  ``semmatch_tf.BiEncoder.from_preset("all-minilm-l6-v2")``), the cosine of the query's and the
  title's embeddings (``semantic_cosine``): synonyms and paraphrases no n-gram sees.

Everything fitted (idf, gazetteer, TF-IDF vocabularies) comes from the titles and queries passed to
:meth:`PairFeatures.fit` (the training split), never from the pairs being scored, and no grades are
used: the features are the same at training and serving time.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

import numpy as np
import pandas as pd

from semmatch_tf.query import AttributeExtractor, Gazetteer, agreement, key, normalize_units

_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:/[0-9]+)?")
_SUFFIXES = ("ings", "ing", "ies", "es", "ed", "s", "ly")
#: Column names of :meth:`PairFeatures.transform`, in order.
FEATURE_NAMES = ("query_words", "title_words", "query_chars", "word_share", "stem_share", "prefix_share",
                 "fuzzy_share", "compound_share", "idf_share", "max_missing_idf", "bigram_share", "phrase_match",
                 "last_word_in_title", "first_word_in_title", "first_match_position", "query_numbers", "number_share",
                 "number_contradict", "bm25", "bm25_share", "query_mean_idf", "query_unseen_share", "char_cosine",
                 "word_cosine",
                 *(f"{name}_{what}" for name in ("brand", "type", "colour", "material", "size", "quantity")
                   for what in ("agree", "contradict")))


def stem(word: str) -> str:
    """A crude English stem: the longest of a few suffixes cut when at least 3 letters stay.

    Examples:
        >>> [stem(w) for w in ("faucets", "lights", "ceiling", "batteries", "glass")]
        ['faucet', 'light', 'ceil', 'batter', 'glas']
    """
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def one_edit(a: str, b: str) -> bool:
    """Whether two words of 4+ letters differ by one substitution, insertion, deletion or swap of
    neighbours (a typo), or not at all.

    Examples:
        >>> one_edit("lumder", "lumber"), one_edit("kombo", "combo"), one_edit("bolt", "boat"), one_edit("tile", "til")
        (True, True, True, False)
    """
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1 or min(len(a), len(b)) < 4:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                  and a[diff[1]] == b[diff[0]])
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1:]


def words(text: str) -> list[str]:
    """The matching words of a text: units normalised, folded, punctuation as spaces.

    Examples:
        >>> words('Everbilt 1/2 in. x 10 ft. Galvanized Chain')
        ['everbilt', '1', '2', 'in', 'x', '10', 'ft', 'galvanized', 'chain']
    """
    return key(normalize_units(str(text))).split()


class PairFeatures:
    """Title-only match features of (query, title) pairs (module docstring), as a DataFrame.

    Args:
        char_ngrams: the character n-gram range of the cosine feature.
        k1, b: BM25's parameters.
        encoder: anything with ``encode(texts, side="query" | "product")`` returning unit vectors
            (a :class:`semmatch_tf.BiEncoder`); adds a ``semantic_cosine`` column after
            :data:`FEATURE_NAMES`. Use one that was not trained on the pairs being stacked (a
            pretrained, zero-shot encoder), or its cosine on the training pairs is not honest.

    Examples:
        >>> titles = ["Simpson Strong-Tie 12-Gauge Angle", "BEHR Premium Textured DeckOver 1-gal. Coating",
        ...           "Simpson Strong-Tie Joist Hanger", "Simpson Strong-Tie 2 in. Angle"]
        >>> features = PairFeatures().fit(["angle bracket", "deck over"], titles)
        >>> row = features.transform(["angle bracket"], ["Simpson Strong-Tie 12-Gauge Angle"]).iloc[0]
        >>> float(row["word_share"]), float(row["last_word_in_title"]), float(row["phrase_match"])
        (0.5, 0.0, 0.0)
    """

    def __init__(self, char_ngrams: tuple[int, int] = (1, 4), k1: float = 1.2, b: float = 0.75, *,
                 encoder=None) -> None:
        self.char_ngrams, self.k1, self.b, self.encoder = tuple(char_ngrams), float(k1), float(b), encoder
        self.idf: dict[str, float] = {}
        self.average_length = 1.0
        self.extractor: AttributeExtractor | None = None
        self.vectorizers: list = []

    def fit(self, queries: Sequence[str], titles: Sequence[str]) -> "PairFeatures":
        """Learn idf and average title length (BM25), the attribute gazetteer and the TF-IDF
        vocabularies from these texts (the training split's; duplicate titles count once).

        Args:
            queries: the training queries.
            titles: the training titles.

        Returns:
            ``self``.
        """
        from sklearn.feature_extraction.text import TfidfVectorizer

        unique_titles = list(dict.fromkeys(str(t) for t in titles))
        tokenised = [words(t) for t in unique_titles]
        documents = [set(title_words) for title_words in tokenised]
        frequency = Counter(w for document in documents for w in document)
        n = len(documents)
        self.idf = {w: math.log(1.0 + (n - f + 0.5) / (f + 0.5)) for w, f in frequency.items()}
        self._unseen_idf = math.log(1.0 + (n + 0.5) / 0.5)
        self.average_length = float(np.mean([len(title_words) for title_words in tokenised])) if unique_titles else 1.0
        self.extractor = AttributeExtractor(Gazetteer.learn(unique_titles))
        self.vectorizers = [
            TfidfVectorizer(analyzer="char_wb", ngram_range=self.char_ngrams, sublinear_tf=True, dtype=np.float32),
            TfidfVectorizer(analyzer="word", sublinear_tf=True, dtype=np.float32, token_pattern=r"(?u)\b\w+\b"),
        ]
        texts = [normalize_units(str(t)) for t in list(dict.fromkeys(str(q) for q in queries)) + unique_titles]
        for vectorizer in self.vectorizers:
            vectorizer.fit(texts)
        return self

    def transform(self, queries: Sequence[str], titles: Sequence[str]) -> pd.DataFrame:
        """The features of each (query, title) pair.

        Args:
            queries, titles: aligned texts, one pair per row.

        Returns:
            A float32 DataFrame with the columns :data:`FEATURE_NAMES` (and ``semantic_cosine``
            with an ``encoder``), one row per pair.

        Raises:
            RuntimeError: before :meth:`fit`.
        """
        if self.extractor is None:
            raise RuntimeError("PairFeatures.transform before fit")
        queries, titles = [str(q) for q in queries], [str(t) for t in titles]
        if len(queries) != len(titles):
            raise ValueError(f"queries and titles must be aligned, got {len(queries)} and {len(titles)}")
        query_attributes = {q: self.extractor.extract(q) for q in dict.fromkeys(queries)}
        title_attributes = {t: self.extractor.extract(t, title=True) for t in dict.fromkeys(titles)}
        rows = [self._row(q, t) + tuple(agreement(query_attributes[q], title_attributes[t]).values())
                for q, t in zip(queries, titles)]
        frame = pd.DataFrame(rows, columns=list(FEATURE_NAMES), dtype=np.float32)
        for column, vectorizer in zip(("char_cosine", "word_cosine"), self.vectorizers):
            left = vectorizer.transform([normalize_units(q) for q in queries])
            right = vectorizer.transform([normalize_units(t) for t in titles])
            frame[column] = np.asarray(left.multiply(right).sum(axis=1), np.float32).ravel()
        if self.encoder is not None:
            frame["semantic_cosine"] = self._semantic_cosine(queries, titles)
        return frame

    def _semantic_cosine(self, queries: list[str], titles: list[str]) -> np.ndarray:
        """Each distinct text embedded once, then the cosine of every pair's two vectors."""
        if not queries:
            return np.zeros(0, np.float32)
        unique_queries, unique_titles = list(dict.fromkeys(queries)), list(dict.fromkeys(titles))
        left = np.asarray(self.encoder.encode(unique_queries, side="query"), np.float32)
        right = np.asarray(self.encoder.encode(unique_titles, side="product"), np.float32)
        rows = {q: i for i, q in enumerate(unique_queries)}
        columns = {t: i for i, t in enumerate(unique_titles)}
        return np.einsum("ij,ij->i", left[[rows[q] for q in queries]], right[[columns[t] for t in titles]])

    def _row(self, query: str, title: str) -> tuple:
        query_units, title_units = normalize_units(str(query)), normalize_units(str(title))
        q, t = key(query_units).split(), key(title_units).split()  # words(), units normalised once
        title_set, title_stems = set(t), {stem(w) for w in t}
        title_prefixes = {w[:4] for w in t if len(w) >= 4}
        n = max(len(q), 1)
        found = [w in title_set for w in q]
        stems = [stem(w) in title_stems for w in q]
        fuzzy = [s or any(one_edit(w, x) for x in title_set) for w, s in zip(q, stems)]
        compound = [s or (len(w) >= 3 and any(len(x) >= 3 and (x.startswith(w) or w.startswith(x)) for x in title_set))
                    for w, s in zip(q, stems)]
        prefixes = [w[:4] in title_prefixes if len(w) >= 4 else w in title_set for w in q]
        bigrams = list(zip(q, q[1:]))
        title_bigrams = set(zip(t, t[1:]))
        positions = [t.index(w) for w in q if w in title_set]
        numbers = _NUMBER.findall(query_units)
        title_numbers = set(_NUMBER.findall(title_units))
        number_share = sum(x in title_numbers for x in numbers) / len(numbers) if numbers else 0.0
        counts = Counter(t)
        bm25 = 0.0
        for w in set(q):
            f = counts.get(w, 0)
            if f:
                bm25 += self.idf.get(w, self._unseen_idf) * f * (self.k1 + 1) / (
                    f + self.k1 * (1 - self.b + self.b * len(t) / self.average_length))
        idfs = [self.idf.get(w, self._unseen_idf) for w in q]
        return (len(q), len(t), len(query), sum(found) / n, sum(stems) / n, sum(prefixes) / n, sum(fuzzy) / n,
                sum(compound) / n, sum(i for i, s in zip(idfs, stems) if s) / max(sum(idfs), 1e-6),
                max([i for i, s in zip(idfs, stems) if not s], default=0.0),
                sum(b in title_bigrams for b in bigrams) / len(bigrams) if bigrams else float(all(found) and bool(q)),
                float(bool(q) and f" {' '.join(q)} " in f" {' '.join(t)} "),
                float(bool(q) and stem(q[-1]) in title_stems), float(bool(q) and stem(q[0]) in title_stems),
                min(positions) / max(len(t), 1) if positions else 1.0,
                len(numbers), number_share, float(bool(numbers) and bool(title_numbers) and number_share == 0),
                bm25, bm25 / max(sum(idfs), 1e-6), float(np.mean(idfs)) if idfs else 0.0,
                sum(w not in self.idf for w in q) / n, 0.0, 0.0)
