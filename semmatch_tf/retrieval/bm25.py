"""BM25 over catalogue titles, with the toolkit's own word split (bm25s does the scoring).

Tokens come from :func:`semmatch_tf.text.normalize.split_words`, the same in-graph normalisation
(NFKC, case folding, Latin accent stripping) and split as the neural models: Chinese and Japanese
are indexed per character, other scripts by words; pure punctuation/symbol tokens are dropped.
bm25s (pinned 0.3.16) is a maintained, numpy/scipy-only BM25 that precomputes every (document,
term) score into a sparse matrix, so a query costs a few sparse-row additions.

Scoring is bm25s' default, the Lucene variant with ``k1=1.5``, ``b=0.75``::

    idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    score(q, d) = sum over distinct query terms t in d of
                  idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))

(a query term repeated in the query counts once per occurrence, as in bm25s). Documents sharing no
term with the query score 0 and are never returned.

Saved layout (written to a temporary sibling and renamed into place)::

    bm25s/             bm25s' own files (sparse score matrix, vocabulary, parameters)
    catalogue.parquet  product_id, title (+ other columns), row i = document i
    meta.json          parameters, tokenizer settings, count
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from semmatch_tf.retrieval.index import (CATALOGUE, META, CatalogueRows, Ranking, check_catalogue, read_json_object,
                                         read_parquet_file, top_k, write_directory_atomically, write_json)
from semmatch_tf.text.normalize import split_words

BM25S_DIR = "bm25s"


class WordSplitter:
    """The BM25 word split as one traced function: texts -> words (CJK per character), punctuation dropped.

    Tracing costs ~1 s, so a :class:`BM25Index` keeps one splitter for all its searches (an object
    the caller holds, not a module-level cache).
    """

    def __init__(self, *, lowercase: bool = True, strip_accents: bool = True) -> None:
        import tensorflow as tf

        from semmatch_tf.compute import per_object_function


        self.lowercase, self.strip_accents = lowercase, strip_accents
        self._split = per_object_function(
            lambda texts: split_words(texts, lowercase=lowercase, strip_accents=strip_accents),
            [tf.TensorSpec([None], tf.string)])

    def __call__(self, texts: Sequence[str], batch_size: int = 4096) -> list[list[str]]:
        """The words of each text, in batches of ``batch_size`` texts."""
        import tensorflow as tf

        words: list[list[str]] = []
        texts = [str(t) for t in texts]
        for start in range(0, len(texts), batch_size):
            ragged = self._split(tf.constant(texts[start:start + batch_size], tf.string))
            for row in ragged.to_list():
                words.append([w for w in (b.decode("utf-8") for b in row) if any(c.isalnum() for c in w)])
        return words


def tokenize_words(texts: Sequence[str], *, lowercase: bool = True, strip_accents: bool = True,
                   batch_size: int = 4096) -> list[list[str]]:
    """The words of each text as BM25 terms (CJK per character), punctuation dropped.

    Traces a new :class:`WordSplitter`; to split repeatedly, keep one (as :class:`BM25Index` does).
    """
    return WordSplitter(lowercase=lowercase, strip_accents=strip_accents)(texts, batch_size)


class BM25Index(CatalogueRows):
    """BM25 over a catalogue's titles; ``search`` returns one :class:`Ranking` per query."""

    def __init__(self, retriever, catalogue: pd.DataFrame, meta: dict, *, splitter: WordSplitter | None = None) -> None:
        self.retriever = retriever
        self.catalogue = check_catalogue(catalogue)
        self.meta = meta
        self.lowercase = bool(meta.get("lowercase", True))
        self.strip_accents = bool(meta.get("strip_accents", True))
        self._splitter = splitter or WordSplitter(lowercase=self.lowercase, strip_accents=self.strip_accents)

    @classmethod
    def build(cls, catalogue: pd.DataFrame, *, k1: float = 1.5, b: float = 0.75, method: str = "lucene",
              lowercase: bool = True, strip_accents: bool = True) -> "BM25Index":
        import bm25s

        catalogue = check_catalogue(catalogue)
        started = time.perf_counter()
        splitter = WordSplitter(lowercase=lowercase, strip_accents=strip_accents)
        corpus = splitter(catalogue["title"].tolist())
        retriever = bm25s.BM25(k1=k1, b=b, method=method)
        # create_empty_token=False: we never send empty queries to bm25s (see search()).
        retriever.index(corpus, create_empty_token=False, show_progress=False)
        meta = {"library": "bm25s", "version": bm25s.__version__, "method": method, "k1": k1, "b": b,
                "lowercase": lowercase, "strip_accents": strip_accents, "count": len(catalogue),
                "tokenizer": "semmatch_tf.text.normalize.split_words",
                "build_seconds": round(time.perf_counter() - started, 3)}
        return cls(retriever, catalogue, meta, splitter=splitter)

    def __len__(self) -> int:
        return len(self.catalogue)


    def tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        return self._splitter(texts)

    def scores(self, query: str | list[str]) -> np.ndarray:
        """BM25 score of every document for one query (text, or its terms): float32 ``[count]``."""
        terms = self.tokenize([query])[0] if isinstance(query, str) else list(query)
        known = [t for t in terms if t in self.retriever.vocab_dict]
        if not known:
            return np.zeros(len(self), np.float32)
        return np.asarray(self.retriever.get_scores(known), dtype=np.float32)

    def search(self, queries: Sequence[str], k: int = 10) -> list[Ranking]:
        """Top ``k`` documents with a positive score per query, best first (ties: lower row)."""
        rankings = []
        for terms in self.tokenize(list(queries)):
            scores = self.scores(terms)
            rows = top_k(scores, k, above=0.0)
            rankings.append(Ranking(rows, scores[rows]))
        return rankings

    def save(self, directory: str | Path) -> Path:
        def write(tmp: Path) -> None:
            self.retriever.save(str(tmp / BM25S_DIR), show_progress=False)
            self.catalogue.to_parquet(tmp / CATALOGUE, index=False)
            write_json(tmp / META, self.meta)

        return write_directory_atomically(Path(directory), write)

    @classmethod
    def load(cls, directory: str | Path) -> "BM25Index":
        import bm25s

        directory = Path(directory)
        for name in (META, CATALOGUE, BM25S_DIR):
            if not (directory / name).exists():
                raise FileNotFoundError(f"{directory}: not a BM25 index ({name} is missing)")
        meta = read_json_object(directory / META)
        catalogue = read_parquet_file(directory / CATALOGUE)
        try:
            retriever = bm25s.BM25.load(str(directory / BM25S_DIR), load_corpus=False, show_progress=False)
        except (ValueError, OSError, KeyError, EOFError) as error:
            raise ValueError(f"{directory / BM25S_DIR}: not a readable BM25 index ({type(error).__name__}: {error}); "
                             "rebuild it") from None
        return cls(retriever, catalogue, meta)
