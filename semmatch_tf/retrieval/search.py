"""Two-stage catalogue search: retrieve candidates (dense, BM25 or both), re-rank with a cross-encoder.

Stage 1 returns ``candidates`` products per query: by cosine from an :class:`EmbeddingIndex`
(``mode="dense"``), by BM25 (``"bm25"``) or both fused (``"hybrid"``: reciprocal rank fusion by
default, or weighted min-max score fusion). Stage 2, when a re-ranker is given (anything with
``score(queries, products) -> scores``, such as :class:`semmatch_tf.runs.TrainedMatcher`), scores
every candidate with the cross-encoder and orders by that score (ties keep the stage-1 order), or,
with ``stage_weight`` w > 0, by ``(1 - w) * norm(rerank) + w * norm(stage-1 score)`` (per-query
min-max; see :func:`semmatch_tf.retrieval.fusion.interpolate_scores`). :func:`rerank_candidates` is
that second stage on its own, for callers that score once and try several depths or weights.

Results are DataFrames with ``rank, product_id, title, score`` (the final stage's score) and each
stage's own score (``dense_score``, ``bm25_score``, ``fused_score``, ``rerank_score``; a stage that
did not run is absent). In hybrid mode both stage-1 scores are filled for every candidate, also for
one that only the other retriever found.

Query understanding (optional, :class:`semmatch_tf.query.QueryUnderstanding`, built into the index
by ``build_index(query_understanding=True)``): each query is corrected and unit-normalised before
stage 1 (BM25 gets the normalised text, against titles indexed the same way; the encoder and the
re-ranker the corrected text), its attributes add ``attribute_boost`` to the candidates' per-query
min-max stage-1 score, and a query whose results split across the catalogue's ``category`` column
is diversified; every result frame carries ``frame.attrs["query_understanding"]`` (see
:meth:`Searcher.understand`).

Building and opening index directories is :mod:`semmatch_tf.retrieval.index_directory`; the
terminal table is :mod:`semmatch_tf.retrieval.format`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from semmatch_tf.retrieval.bm25 import BM25Index
from semmatch_tf.retrieval.fusion import RRF_K, interpolate_scores, reciprocal_rank_fusion, weighted_score_fusion
from semmatch_tf.retrieval.index import EmbeddingIndex
from semmatch_tf.query.senses import rank_senses
from semmatch_tf.text.units import normalize_units

MODES = ("dense", "bm25", "hybrid")
STAGE_COLUMNS = {"dense": "dense_score", "bm25": "bm25_score", "hybrid": "fused_score"}
FUSIONS = ("rrf", "weighted")


class Searcher:
    """Search one catalogue by a query string.

    Args:
        index: the dense index (needed for "dense" and "hybrid").
        encoder: embeds queries (``embed_queries(texts) -> [N, D]``), the model of ``index``.
        bm25: the BM25 index over the same catalogue (needed for "bm25" and "hybrid").
        reranker: optional cross-encoder with ``score(queries, products)``.
        mode: "dense", "bm25" or "hybrid".
        fusion: "rrf" (reciprocal rank fusion, ``rrf_k``) or "weighted" (min-max score fusion).
        weights: (dense, bm25) weights of the fusion.
        exact: exact dense search (True) or the index's HNSW graph (False).
        stage_weight: weight in [0, 1] of the stage-1 score against the re-ranker's (0: the
            re-ranker alone orders the candidates).
        understander: optional :class:`semmatch_tf.query.QueryUnderstanding` (see the module docstring).
        understand: apply ``understander`` (False: search the query as typed; a unit-normalised
            BM25 index still gets unit-normalised query text).
        bm25_unit_normalised: the BM25 index holds unit-normalised titles.

    Examples:
        >>> from semmatch_tf.retrieval.bm25 import BM25Index
        >>> catalogue = pd.DataFrame({"product_id": ["p1", "p2"], "title": ["Red summer dress", "USB-C cable"]})
        >>> searcher = Searcher(bm25=BM25Index.build(catalogue), mode="bm25")
        >>> searcher.search("red dress", k=1)["product_id"].tolist()
        ['p1']
    """

    def __init__(self, index: EmbeddingIndex | None = None, encoder=None, *, bm25: BM25Index | None = None,
                 reranker=None, mode: str = "dense", fusion: str = "rrf", weights: Sequence[float] = (1.0, 1.0),
                 rrf_k: int = RRF_K, exact: bool = True, stage_weight: float = 0.0, understander=None,
                 understand: bool = True, bm25_unit_normalised: bool = False) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        if mode in ("dense", "hybrid") and (index is None or encoder is None):
            raise ValueError(f"mode {mode!r} needs a dense index and its encoder")
        if mode in ("bm25", "hybrid") and bm25 is None:
            raise ValueError(f"mode {mode!r} needs a BM25 index")
        if not 0.0 <= stage_weight <= 1.0:
            raise ValueError(f"stage_weight must be in [0, 1], got {stage_weight}")
        self.stage_weight = float(stage_weight)
        self.index, self.encoder, self.bm25, self.reranker = index, encoder, bm25, reranker
        self.mode, self.fusion, self.weights, self.rrf_k, self.exact = mode, fusion, tuple(weights), rrf_k, exact
        self._titles = _title_lookup(index, bm25)
        self._dense_rows = {pid: i for i, pid in enumerate(index.ids)} if index is not None else {}
        self._bm25_rows = {pid: i for i, pid in enumerate(bm25.ids)} if bm25 is not None else {}
        self.understander, self.understand_queries = understander, bool(understand)
        self.bm25_unit_normalised = bool(bm25_unit_normalised)
        self._categories = _category_lookup(index, bm25)

    # -- stage 1 -----------------------------------------------------------------------------------
    def _dense(self, queries: Sequence[str], depth: int) -> tuple[list[list[tuple[str, float]]], np.ndarray]:
        """Dense hits per query; none for a query with no in-vocabulary token (its vector would be
        that of padding and unknowns, which still lands near *something* with a confident cosine)."""
        vectors = self.encoder.embed_queries(list(queries))
        rankings = self.index.search(vectors, depth, exact=self.exact)
        ids = self.index.ids
        known = getattr(self.encoder, "query_known_tokens", None)
        understood = known(list(queries)) > 0 if known is not None else np.ones(len(queries), bool)
        return [[(ids[i], float(s)) for i, s in zip(r.indices, r.scores)] if ok else []
                for r, ok in zip(rankings, understood)], vectors

    def _bm25(self, queries: Sequence[str], depth: int) -> list[list[tuple[str, float]]]:
        ids = self.bm25.ids
        return [[(ids[i], float(s)) for i, s in zip(r.indices, r.scores)] for r in self.bm25.search(queries, depth)]

    def candidates(self, queries: Sequence[str], depth: int = 100, *,
                   dense_queries: Sequence[str] | None = None) -> list[pd.DataFrame]:
        """Stage-1 candidates per query: ``product_id``, stage scores, best first (no re-ranking).

        ``dense_queries``: other texts for the dense encoder (query understanding gives BM25 the
        unit-normalised text and the encoder the corrected one); default ``queries``.
        """
        queries = [str(q) for q in queries]
        dense_queries = queries if dense_queries is None else [str(q) for q in dense_queries]
        if self.mode == "dense":
            dense, _ = self._dense(dense_queries, depth)
            return [_frame(hits, "dense_score") for hits in dense]
        if self.mode == "bm25":
            return [_frame(hits, "bm25_score") for hits in self._bm25(queries, depth)]
        dense, vectors = self._dense(dense_queries, depth)
        lexical = self._bm25(queries, depth)
        frames = []
        for query, vector, d_hits, b_hits in zip(queries, vectors, dense, lexical):
            if self.fusion == "rrf":
                fused = reciprocal_rank_fusion([[p for p, _ in d_hits], [p for p, _ in b_hits]], k=self.rrf_k,
                                               weights=self.weights)
            else:
                fused = weighted_score_fusion([d_hits, b_hits], weights=self.weights)
            frame = _frame(fused[:depth], "fused_score")
            frame["dense_score"] = self._dense_scores(vector, frame["product_id"]).astype(np.float64)
            frame["bm25_score"] = self._bm25_scores(query, frame["product_id"]).astype(np.float64)
            frames.append(frame)
        return frames

    def _dense_scores(self, vector: np.ndarray, ids: pd.Series) -> np.ndarray:
        rows = [self._dense_rows.get(pid, -1) for pid in ids]
        scores = np.full(len(rows), np.nan, np.float32)
        known = np.asarray([r >= 0 for r in rows], bool)
        if known.any():
            scores[known] = self.index.embeddings[np.asarray(rows)[known]] @ vector
        return scores

    def _bm25_scores(self, query: str, ids: pd.Series) -> np.ndarray:
        everything = self.bm25.scores(query)
        return np.asarray([everything[self._bm25_rows[pid]] if pid in self._bm25_rows else np.nan for pid in ids],
                          np.float32)

    # -- stage 2 and results -----------------------------------------------------------------------
    def search(self, query: str, k: int = 10, candidates: int = 100) -> pd.DataFrame:
        """The ``k`` best products for ``query``; with a re-ranker, the top ``candidates`` of stage 1
        are re-scored and re-ordered, and any further results (``k > candidates``) follow in stage-1
        order with ``score`` NaN (not comparable with the re-ranker's scores)."""
        return self.search_many([query], k=k, candidates=candidates)[0]

    def search_many(self, queries: Sequence[str], k: int = 10, candidates: int = 100) -> list[pd.DataFrame]:
        """:meth:`search` for many queries; all their candidates go to the re-ranker in one call."""
        queries = check_queries(queries)
        check_depths(k, candidates, reranking=self.reranker is not None)
        understood = self._understand(queries)
        depth = max(k, candidates) if self.reranker is not None else k
        if understood is not None:
            depth = max(depth, self.understander.config.sense_depth)
        frames = self.candidates(self._bm25_texts(queries, understood), depth,
                                 dense_queries=[u.corrected for u in understood] if understood else None)
        for frame in frames:
            frame["score"] = frame[self.stage_column]
        if understood is not None:
            frames = [self._boost(frame, u) for frame, u in zip(frames, understood)]
        if self.reranker is not None:
            texts = [u.corrected for u in understood] if understood else queries
            scores = self.rerank_scores(texts, frames, candidates)
            frames = [rerank_candidates(frame, s, stage_column=self.stage_column, stage_weight=self.stage_weight)
                      for frame, s in zip(frames, scores)]
        results = []
        for position, frame in enumerate(frames):
            frame, info = self._senses(frame, k, understood[position] if understood else None, queries[position])
            result = _finish(frame.head(k), self._titles)
            result.attrs["query_understanding"] = info
            results.append(result)
        return results

    # -- query understanding -------------------------------------------------------------------------
    def _understand(self, queries: Sequence[str]):
        if self.understander is None or not self.understand_queries:
            return None
        return [self.understander.analyse(q) for q in queries]

    def _bm25_texts(self, queries: Sequence[str], understood) -> list[str]:
        """What BM25 searches with: the understood text, or the query unit-normalised like the titles."""
        if understood is not None:
            return [u.search_text for u in understood]
        if self.bm25_unit_normalised:
            return [normalize_units(q) or q for q in queries]
        return list(queries)

    def _boost(self, frame: pd.DataFrame, understood) -> pd.DataFrame:
        """Add the query's attribute agreement to the per-query min-max stage-1 score, re-order."""
        config = self.understander.config
        if frame.empty or (config.agree_boost == 0 and config.contradict_penalty == 0):
            return frame
        frame = frame.copy()
        boosts = self.understander.boosts(understood.attributes, [self._titles.get(p, "") for p in frame["product_id"]])
        stage = frame[self.stage_column].to_numpy(np.float64)
        span = np.nanmax(stage) - np.nanmin(stage) if len(stage) else 0.0
        normalised = (stage - np.nanmin(stage)) / span if span > 0 else np.ones(len(stage))
        frame["attribute_boost"] = boosts
        frame["score"] = normalised + boosts
        return frame.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)

    def _senses(self, frame: pd.DataFrame, k: int, understood, query: str) -> tuple[pd.DataFrame, dict]:
        """The senses of a ranked frame and, when they come from a ``category`` column and the query is
        ambiguous, the frame re-ordered so its top ``k`` shows every sense (``diversify``)."""
        config = self.understander.config if self.understander is not None else None
        depth, share = (config.sense_depth, config.sense_min_share) if config else (30, 0.2)
        ids = frame["product_id"].tolist()
        by_column = bool(self._categories)
        if by_column:
            categories = [self._categories.get(p) for p in ids]
        elif understood is not None:
            categories = [self.understander.title_attributes(self._titles.get(p, ""))["type"] for p in ids]
        else:
            categories = [None] * len(ids)
        senses, order = rank_senses(categories, [self._titles.get(p, "") for p in ids],
                                    frame[self.stage_column].to_numpy(np.float64), k=k, depth=depth, min_share=share,
                                    spread=by_column and understood is not None and config.diversify,
                                    source="category" if by_column else "product type")
        frame = frame.iloc[order].reset_index(drop=True)
        if understood is not None:
            return frame, understood.to_dict(senses)
        return frame, {"original": query, "corrected": query, "did_you_mean": None, "search_text": query,
                       "corrections": [], "attributes": {}, "senses": senses, "ambiguous": len(senses) >= 2,
                       "notes": ["no query understanding in this index" if self.understander is None
                                 else "query understanding switched off"]}

    def understand(self, query: str, k: int = 10) -> dict:
        """What the searcher makes of ``query``, JSON-able: ``original``, ``corrected``, ``did_you_mean``
        (None when nothing was corrected), ``attributes``, ``senses`` (``[{"sense", "share",
        "examples", "source"}]``, two or more when the results split), plus ``search_text``,
        ``corrections``, ``ambiguous`` and ``notes``. Runs the search (senses come from its results)."""
        return self.search_many([query], k=k)[0].attrs["query_understanding"]

    @property
    def stage_column(self) -> str:
        """The column of the stage-1 score that orders candidates in this mode."""
        return STAGE_COLUMNS[self.mode]

    def rerank_scores(self, queries: Sequence[str], frames: Sequence[pd.DataFrame], depth: int) -> list[np.ndarray]:
        """The re-ranker's scores for the top ``depth`` rows of each query's candidate frame, in one call."""
        if self.reranker is None:
            raise ValueError("this searcher has no re-ranker")
        pairs = [(str(query), self._titles[p]) for query, frame in zip(queries, frames)
                 for p in frame["product_id"].head(depth)]
        scores = np.asarray(self.reranker.score([q for q, _ in pairs], [t for _, t in pairs]), np.float64) \
            if pairs else np.zeros(0)
        bounds = np.cumsum([0] + [min(depth, len(frame)) for frame in frames])
        return [scores[start:end] for start, end in zip(bounds[:-1], bounds[1:])]


MAX_QUERY_CHARACTERS = 2000


def check_queries(queries: Sequence[str]) -> list[str]:
    """Queries as stripped strings; an empty, non-string or over-long one is a ValueError."""
    checked = []
    for position, query in enumerate(queries):
        if not isinstance(query, str):
            raise ValueError(f"query {position}: expected a string, got {type(query).__name__}")
        query = query.strip()
        if not query:
            raise ValueError(f"query {position}: empty query (nothing to search for)")
        if len(query) > MAX_QUERY_CHARACTERS:
            raise ValueError(f"query {position}: {len(query)} characters, more than {MAX_QUERY_CHARACTERS}")
        checked.append(query)
    return checked


def check_depths(k, candidates, *, reranking: bool) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive number of results, got {k!r}")
    if reranking and (isinstance(candidates, bool) or not isinstance(candidates, (int, np.integer)) or candidates < 1):
        raise ValueError(f"candidates must be a positive number of products to re-rank, got {candidates!r}")


def rerank_candidates(frame: pd.DataFrame, rerank_scores: np.ndarray, *, stage_column: str,
                      stage_weight: float = 0.0) -> pd.DataFrame:
    """Stage 2 for one query: re-order the top ``len(rerank_scores)`` rows of a stage-1 ``frame``.

    ``score`` becomes the re-ranker's score (``stage_weight`` 0) or its interpolation with
    ``frame[stage_column]``; rows below the re-ranked head follow in stage-1 order with ``score`` and
    ``rerank_score`` NaN. Ties keep the stage-1 order.
    """
    depth = len(rerank_scores)
    head, tail = frame.head(depth).copy(), frame.iloc[depth:].copy()
    if len(head) != depth:
        raise ValueError(f"{depth} re-ranker scores for {len(head)} candidates")
    head["rerank_score"] = np.asarray(rerank_scores, np.float64)
    head["score"] = head["rerank_score"] if stage_weight == 0 else \
        interpolate_scores(head["rerank_score"], head[stage_column], stage_weight)
    tail["rerank_score"] = np.nan
    tail["score"] = np.nan
    head = head.sort_values("score", ascending=False, kind="stable")
    return pd.concat([head, tail], ignore_index=True)


def _frame(hits: Sequence[tuple[str, float]], column: str) -> pd.DataFrame:
    return pd.DataFrame({"product_id": [str(p) for p, _ in hits],
                         column: np.asarray([s for _, s in hits], np.float64)})


def _finish(frame: pd.DataFrame, titles: dict[str, str]) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    frame.insert(2, "title", [titles.get(p, "") for p in frame["product_id"]])
    score = frame.pop("score")
    frame.insert(3, "score", score)
    return frame


def _title_lookup(index: EmbeddingIndex | None, bm25: BM25Index | None) -> dict[str, str]:
    titles: dict[str, str] = {}
    for part in (bm25, index):
        if part is not None:
            shown = part.catalogue["original_title"] if "original_title" in part.catalogue.columns else part.titles
            titles.update(zip(part.ids, (str(t) for t in shown)))
    return titles


def _category_lookup(index: EmbeddingIndex | None, bm25: BM25Index | None) -> dict[str, str]:
    """product id -> the catalogue's ``category`` (empty when the catalogue has none)."""
    for part in (index, bm25):
        if part is not None and "category" in part.catalogue.columns:
            return {pid: str(c) for pid, c in zip(part.ids, part.catalogue["category"]) if isinstance(c, str) and c}
    return {}


#: Names that moved to ``index_directory.py`` / ``format.py`` (old import paths keep working).
_MOVED = {**{name: "semmatch_tf.retrieval.index_directory" for name in ["INDEX_META", "DENSE_DIR", "BM25_DIR", "QUERY_DIR", 'load_catalogue', 'build_index', 'DEMO_QUERIES', 'demo_index', 'load_searcher', 'read_index_meta', 'SearcherCache', 'search_index']},
          "format_results": "semmatch_tf.retrieval.format",
          "format_understanding": "semmatch_tf.query.understanding"}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
