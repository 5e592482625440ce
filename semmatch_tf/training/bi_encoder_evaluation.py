"""Evaluation of a bi-encoder: re-ranking each query's judged products by cosine, and retrieval.

What a bi-encoder run's ``report.json`` holds. Used by the bi-encoder trainer
(:mod:`semmatch_tf.training.contrastive`, which re-exports these names) and by benchmarks.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from semmatch_tf.data.schema import LabelScheme, PairDataset
from semmatch_tf.evaluation.ranking import ranking_metrics, retrieval_metrics
from semmatch_tf.retrieval.index import EmbeddingIndex, rankings_to_ids
from semmatch_tf.runs import BI_ENCODER_FAMILY

REPORT_KS = (1, 5, 10)
RETRIEVAL_KS = (10, 100)


def all_products(splits) -> pd.DataFrame:
    """Every distinct product of the dataset (all splits): the retrieval catalogue of the report."""
    frame = pd.concat([s.frame for s in splits], ignore_index=True)
    frame = frame.drop_duplicates("product_id")
    return pd.DataFrame({"product_id": frame["product_id"].astype(str).to_numpy(),
                         "title": frame["product"].astype(str).to_numpy()})


def evaluate_bi_encoder(encoder, dataset: PairDataset, *, catalogue: pd.DataFrame | None = None,
                        ks: Sequence[int] = REPORT_KS, retrieval_ks: Sequence[int] = RETRIEVAL_KS,
                        batch_size: int = 256) -> dict:
    """Ranking metrics of ordering each query's judged products by cosine, overall and per language;
    with a catalogue, also retrieval metrics of each query's top results among all of it.

    Conventions are those of the cross-encoders' reports (``evaluation.report``): gain = grade -
    lowest grade, and a product is relevant (MRR, MAP, Recall) when its gain is at least half the
    largest gain, so ``format_report`` prints both kinds of run alike.
    """
    frame = dataset.frame
    report: dict = {"family": BI_ENCODER_FAMILY, "dataset": {"name": dataset.name, "pairs": len(dataset)},
                    "counts": {"pairs": len(dataset), "queries": int(frame["query_id"].nunique())}}
    if not len(dataset):
        return report
    scores = pair_cosines(encoder, frame["query"].tolist(), frame["product"].tolist(), batch_size)
    report["ranking"] = _ranking_block(dataset, scores, ks)
    languages = frame["language"].to_numpy()
    report["by_language"] = {}
    for language in sorted(set(languages)):
        rows = np.flatnonzero(languages == language)
        part = dataset.subset(rows)
        report["by_language"][str(language)] = {
            "counts": {"pairs": int(len(rows)), "queries": int(part.frame["query_id"].nunique())},
            "ranking": _ranking_block(part, scores[rows], ks)}
    if catalogue is not None and len(catalogue):
        report["retrieval"] = retrieval_report(encoder, dataset, catalogue, retrieval_ks, batch_size)
    return report


def _relevance_threshold(labels: LabelScheme) -> float:
    return (labels.grade_range[1] - labels.grade_range[0]) / 2


def _ranking_block(dataset: PairDataset, scores: np.ndarray, ks: Sequence[int]) -> dict:
    gains = dataset.frame["grade"].to_numpy(np.float64) - dataset.labels.grade_range[0]
    return ranking_metrics(dataset.frame["query_id"].to_numpy(), scores, gains, ks=tuple(ks),
                           relevance_threshold=_relevance_threshold(dataset.labels))


def pair_cosines(encoder, queries: Sequence[str], products: Sequence[str], batch_size: int = 256) -> np.ndarray:
    """Cosine of each aligned (query, product) pair, each distinct text embedded once.

    The texts reach the encoder as given (not cast to ``str`` here), so it is the encoder that
    checks them: a missing text is an error there, not the embedded text "nan".
    """
    if len(queries) != len(products):
        raise ValueError(f"{len(queries)} queries but {len(products)} products: pairs must be aligned")
    unique_q, q_index = _distinct(queries)
    unique_p, p_index = _distinct(products)
    q = encoder.embed_queries(unique_q, batch_size=batch_size)
    p = encoder.embed_products(unique_p, batch_size=batch_size)
    return np.einsum("nd,nd->n", q[q_index], p[p_index]).astype(np.float64)


def _distinct(texts: Sequence[str]) -> tuple[list, np.ndarray]:
    """The distinct texts in first-seen order, and each text's position among them."""
    codes, uniques = pd.factorize(pd.Series(list(texts), dtype=object), use_na_sentinel=False)
    return uniques.tolist(), codes


def qrels_of(dataset: PairDataset) -> dict[str, dict[str, float]]:
    """``{query_id: {product_id: gain}}`` with gain = grade - lowest possible grade (0 = irrelevant)."""
    low = dataset.labels.grade_range[0]
    qrels: dict[str, dict[str, float]] = {}
    for qid, pid, grade in zip(dataset.frame["query_id"], dataset.frame["product_id"], dataset.frame["grade"]):
        qrels.setdefault(str(qid), {})[str(pid)] = max(float(grade) - low, qrels.get(str(qid), {}).get(str(pid), 0.0))
    return qrels


def retrieval_report(encoder, dataset: PairDataset, catalogue: pd.DataFrame, ks: Sequence[int],
                     batch_size: int = 256) -> dict:
    index = EmbeddingIndex.build(encoder, catalogue, batch_size, progress=False)
    queries = dataset.frame.drop_duplicates("query_id")
    rankings = index.search(encoder.embed_queries(queries["query"].tolist(), batch_size=batch_size), k=max(ks))
    ranked = dict(zip(queries["query_id"].astype(str), rankings_to_ids(rankings, index.ids)))
    metrics = retrieval_metrics(ranked, qrels_of(dataset), ks=tuple(ks),
                                relevance_threshold=_relevance_threshold(dataset.labels))
    return {"catalogue_size": len(catalogue), **metrics}
