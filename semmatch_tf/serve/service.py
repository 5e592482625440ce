"""What the search page shows, as JSON: results with every stage's score and rank, judged grades,
per-query nDCG@10, attributions, and the query understanding when the searcher has one.

The service holds what was loaded once (a :class:`~semmatch_tf.retrieval.search.Searcher`, an
:class:`~semmatch_tf.explain.Explainer`, judgements); :mod:`semmatch_tf.serve.app` puts it behind
HTTP. Keeping it free of HTTP lets notebooks and tests call the same code.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from semmatch_tf.data.demo import load_demo, load_demo_catalogue
from semmatch_tf.data.language import detect_language
from semmatch_tf.ensemble.matcher import EnsembleMatcher
from semmatch_tf.evaluation.ranking import per_query_retrieval
from semmatch_tf.explain import Explainer, IntegratedGradientsConfig
from semmatch_tf.retrieval.index_directory import (DEMO_QUERIES, RerankRuns, load_searcher, read_index_meta,
                                                   rerank_dirs)
from semmatch_tf.retrieval.search import check_queries

#: Stage columns of a search result frame, in pipeline order, with the names the page shows.
STAGES = (("bm25_score", "bm25"), ("dense_score", "dense"), ("fused_score", "fused"),
          ("rerank_score", "rerank"), ("score", "final"))


@dataclasses.dataclass(frozen=True)
class ServiceConfig:
    """Search defaults of a service.

    Args:
        k: results shown per query.
        candidates: first-stage depth handed to the re-ranker (and over which stage ranks are counted).
        max_k: the most results one request may ask for.
    """

    k: int = 10
    candidates: int = 100
    max_k: int = 100

    def __post_init__(self) -> None:
        for name in ("k", "candidates", "max_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.k > self.max_k:
            raise ValueError(f"k={self.k} is more than max_k={self.max_k}")


class SearchService:
    """Search, stage scores and ranks, judgements and attributions for one loaded searcher.

    Args:
        searcher: a loaded :class:`~semmatch_tf.retrieval.search.Searcher`.
        explainer: an :class:`~semmatch_tf.explain.Explainer` (None: no highlights).
        qrels: judged grades, ``{query text: {product_id: grade}}`` (None: none shown).
        languages: ``{product_id: language}`` for the language tags (guessed from the title
            where missing).
        config: defaults and limits.
        description: what was loaded (index, re-ranker), shown on the page.

    Examples:
        >>> from semmatch_tf.retrieval.search import load_searcher             # doctest: +SKIP
        >>> service = SearchService(load_searcher("runs/demo/index", mode="bm25"))  # doctest: +SKIP
        >>> service.search("scented candle")["results"][0]["stages"]["bm25"]["rank"]  # doctest: +SKIP
        1
    """

    def __init__(self, searcher, explainer=None, *, qrels: Mapping[str, Mapping[str, float]] | None = None,
                 languages: Mapping[str, str] | None = None, config: ServiceConfig | None = None,
                 description: dict | None = None) -> None:
        self.searcher, self.explainer = searcher, explainer
        self.qrels = {_query_key(q): dict(j) for q, j in (qrels or {}).items()}
        self.languages = dict(languages or {})
        self.config = config or ServiceConfig()
        self.description = dict(description or {})

    # -- search ------------------------------------------------------------------------------------
    def search(self, query: str, k: int | None = None) -> dict:
        """The page's search response (see the README's API section for its fields)."""
        query = check_queries([query])[0]
        k = self.config.k if k is None else k
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.config.max_k:
            raise ValueError(f"k must be an integer in [1, {self.config.max_k}], got {k!r}")
        started = time.perf_counter()
        depth = max(k, self.config.candidates)
        frame = self.searcher.search(query, k=depth, candidates=self.config.candidates)
        ranks = stage_ranks(frame)
        judged = self.qrels.get(_query_key(query))
        results = [self._result(row, ranks.iloc[i], judged) for i, (_, row) in enumerate(frame.head(k).iterrows())]
        response = {"query": query, "k": k, "mode": self.searcher.mode,
                    "reranked": self.searcher.reranker is not None, "stage_weight": self.searcher.stage_weight,
                    "stages": [name for column, name in STAGES if column in frame.columns],
                    "results": results, "judged": judged is not None,
                    "ndcg@10": self._ndcg(frame, judged), "explainable": self.explainer is not None,
                    "understanding": self._understanding(frame, query)}
        response["seconds"] = round(time.perf_counter() - started, 4)
        return response

    def _result(self, row: pd.Series, ranks: pd.Series, judged: Mapping[str, float] | None) -> dict:
        product_id, title = str(row["product_id"]), str(row["title"])
        stages = {name: {"score": _number(row[column]), "rank": _rank(ranks[column])}
                  for column, name in STAGES if column in row.index}
        grade = None if judged is None else judged.get(product_id)
        return {"rank": int(row["rank"]), "product_id": product_id, "title": title,
                "language": self.languages.get(product_id) or detect_language(title),
                "score": _number(row["score"]), "stages": stages,
                "grade": None if grade is None else float(grade)}

    def _ndcg(self, frame: pd.DataFrame, judged: Mapping[str, float] | None) -> float | None:
        """nDCG@10 of the shown ranking against the query's judgements (unjudged products count 0)."""
        if not judged:
            return None

        table = per_query_retrieval({"q": frame["product_id"].head(10).tolist()}, {"q": judged}, ks=(10,))
        return None if table.empty else _number(table["ndcg@10"].iloc[0])

    def _understanding(self, frame: pd.DataFrame, query: str) -> dict | None:
        """The query understanding of this search (did you mean, attributes, senses): what the searcher
        left in the results' ``attrs``, else its ``understand(query)`` when it has one, else None."""
        found = frame.attrs.get("query_understanding")
        if found is None and hasattr(self.searcher, "understand"):
            found = self.searcher.understand(query)
        return _json_able(found) if found else None

    # -- attributions ------------------------------------------------------------------------------
    def explain(self, query: str, product: str | None = None, product_id: str | None = None) -> dict:
        """Attributions for ``query`` against a product title (or the title of ``product_id``)."""
        if self.explainer is None:
            raise ValueError("this server has no model to explain scores with (a BM25-only index and no re-ranker)")
        if product is None:
            if product_id is None:
                raise ValueError("give product (a title) or product_id")
            titles = self.searcher._titles
            if str(product_id) not in titles:
                raise ValueError(f"product_id {product_id!r} is not in the index")
            product = titles[str(product_id)]
        started = time.perf_counter()
        explanation = self.explainer.explain(query, product).to_dict()
        explanation["product_id"] = None if product_id is None else str(product_id)
        explanation["seconds"] = round(time.perf_counter() - started, 4)
        return explanation

    def info(self) -> dict:
        """What the server loaded (for the page's header and for scripts)."""
        return {**self.description, "mode": self.searcher.mode, "reranked": self.searcher.reranker is not None,
                "stage_weight": self.searcher.stage_weight, "explainer": getattr(self.explainer, "family", None),
                "judged_queries": len(self.qrels), "k": self.config.k, "candidates": self.config.candidates,
                "example_queries": self.description.get("example_queries", [])}


def _json_able(value):
    """``value`` with NumPy scalars and tuples turned into plain JSON types."""
    if isinstance(value, dict):
        return {str(k): _json_able(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_able(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def stage_ranks(frame: pd.DataFrame) -> pd.DataFrame:
    """Per stage column, the rank (1 = best) each row got from that stage's score among the rows
    of ``frame`` (the candidates); NaN where the stage gave no score.

    Examples:
        >>> frame = pd.DataFrame({"bm25_score": [1.0, 3.0, float("nan")], "score": [0.9, 0.5, 0.1]})
        >>> stage_ranks(frame)["bm25_score"].tolist()[:2], stage_ranks(frame)["score"].tolist()
        ([2.0, 1.0], [1.0, 2.0, 3.0])
    """
    columns = [column for column, _ in STAGES if column in frame.columns]
    return pd.DataFrame({c: frame[c].rank(ascending=False, method="first", na_option="keep") for c in columns},
                        index=frame.index)


def _query_key(query: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKC", str(query)).strip().casefold()


def _number(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else round(value, 6)


def _rank(value) -> int | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)


# -- loading ----------------------------------------------------------------------------------------
def demo_judgements() -> tuple[dict[str, dict[str, float]], dict[str, str], list[str]]:
    """The demo's judgements ``{query: {product_id: grade}}``, product languages and example
    queries: the demo's own (one per language) and the first judged query of each language."""
    frame = load_demo().frame
    qrels: dict[str, dict[str, float]] = {}
    for query, product_id, grade in zip(frame["query"], frame["product_id"], frame["grade"]):
        qrels.setdefault(str(query), {})[str(product_id)] = float(grade)
    judged = frame.drop_duplicates("language")["query"].tolist()
    examples = list(dict.fromkeys([*DEMO_QUERIES, *judged]))
    catalogue = load_demo_catalogue()
    return qrels, dict(zip(catalogue["product_id"].astype(str), catalogue["language"])), examples


def read_qrels(path: str | Path) -> dict[str, dict[str, float]]:
    """Judgements from a csv/tsv/jsonl file with columns ``query``, ``product_id``, ``grade``; a
    missing column or a grade that is not a number is one error naming the file and row."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--qrels {path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        frame = pd.read_json(path, lines=True, dtype={"query": str, "product_id": str})
    else:
        frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype={"query": str, "product_id": str})
    missing = [c for c in ("query", "product_id", "grade") if c not in frame.columns]
    if missing:
        raise ValueError(f"--qrels {path}: missing column(s) {missing}; expected query, product_id, grade")
    grades = pd.to_numeric(frame["grade"], errors="coerce")
    bad = np.flatnonzero(grades.isna().to_numpy() | frame["query"].isna().to_numpy())
    if len(bad):
        raise ValueError(f"--qrels {path}, row {int(bad[0]) + 1}: grade {frame['grade'].iloc[bad[0]]!r} "
                         "is not a number (or the query is empty)")
    qrels: dict[str, dict[str, float]] = {}
    for query, product_id, grade in zip(frame["query"], frame["product_id"], grades):
        qrels.setdefault(str(query), {})[str(product_id)] = float(grade)
    return qrels


def _described_runs(runs: tuple[Path, ...]) -> str | list[str] | None:
    resolved = [str(r.resolve()) for r in runs]
    return None if not resolved else resolved[0] if len(resolved) == 1 else resolved


def load_service(index_dir: str | Path, *, rerank_run_dir: RerankRuns = None, mode: str | None = None,
                 stage_weight: float = 0.0, qrels: str | Path | None = None, explain_with: str | None = "auto",
                 config: ServiceConfig | None = None, compute: str = "float32") -> SearchService:
    """Load an index (and an optional re-ranker) once into a :class:`SearchService`.

    Args:
        index_dir: a ``semmatch-tf index`` directory.
        rerank_run_dir: a cross-encoder run that re-ranks the candidates, or several (averaged).
        mode: "dense", "bm25" or "hybrid" (None: hybrid when the index has both parts).
        stage_weight: the first stage's weight in the final score (blended with the re-ranker's).
        qrels: a judgements file; the demo catalogue's index brings the demo's own judgements.
        explain_with: "auto" (the re-ranker, else the index's encoder; several re-rankers: the
            encoder), "reranker", "encoder" or None.
        config: k, candidates and limits.
        compute: "bfloat16" runs the query encoder and the re-ranker through oneDNN's bf16 rewrite
            (:mod:`semmatch_tf.compute`); explanations stay float32.
    """
    index_dir = Path(index_dir).resolve()
    if not (index_dir / "index.json").is_file():
        raise FileNotFoundError(f"--index {index_dir}: not an index directory (index.json is missing)")
    meta = read_index_meta(index_dir)
    if mode is None:
        mode = "hybrid" if len(meta["parts"]) == 2 else ("dense" if "dense" in meta["parts"] else "bm25")
    searcher = load_searcher(index_dir, rerank_run_dir=rerank_run_dir, mode=mode, stage_weight=stage_weight,
                             compute=compute)
    judgements, languages, examples = {}, {}, []
    if meta.get("catalogue") == "demo":
        judgements, languages, examples = demo_judgements()
    if qrels is not None:
        judgements = read_qrels(qrels)
    model = None
    ensemble = isinstance(searcher.reranker, EnsembleMatcher)  # several re-rankers: no one network to explain
    if explain_with == "reranker" and ensemble:
        raise ValueError("explain_with='reranker' explains one re-ranker; with several, use 'encoder' or None")
    if explain_with in ("auto", "reranker") and searcher.reranker is not None and not ensemble:
        model = searcher.reranker
    elif explain_with in ("auto", "encoder") and searcher.encoder is not None:
        model = searcher.encoder
    # Fewer steps than the default: a page explains several results per query; the gap is shown.
    explainer = Explainer(model, IntegratedGradientsConfig(steps=16, max_steps=64, tolerance=0.05)) \
        if model is not None else None
    description: dict[str, Any] = {"index": str(index_dir), "catalogue": meta.get("catalogue"),
                                   "products": meta.get("count"), "encoder": meta.get("pretrained")
                                   or meta.get("model_run_dir"),
                                   "reranker": _described_runs(rerank_dirs(rerank_run_dir)),
                                   "example_queries": examples}
    return SearchService(searcher, explainer, qrels=judgements, languages=languages, config=config,
                         description=description)
