"""One evaluation report for a model's predictions on judged pairs: classification, grades,
ranking, and the same per language. JSON-serialisable; written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from semmatch_tf.atomic import atomic_write_text
from semmatch_tf.data.schema import PairDataset
from semmatch_tf.evaluation.classification import classification_report
from semmatch_tf.evaluation.ranking import DEFAULT_KS, ranking_metrics
from semmatch_tf.evaluation.regression import regression_report


def evaluate_predictions(dataset: PairDataset, *, probabilities: np.ndarray | None = None,
                         scores: np.ndarray | None = None, ks: Sequence[int] = DEFAULT_KS,
                         cuts: Sequence[float] | None = None) -> dict:
    """Report for ``dataset`` given class ``probabilities`` [N, C] and/or predicted grades ``scores`` [N].

    The predicted class is the argmax of the probabilities (or the class the predicted grade falls
    in: the nearest class grade, or between a run's tuned ``cuts``, ``LabelScheme.cuts``); the
    predicted grade is the expected grade under the probabilities (or ``scores``). Ranking uses the
    predicted grade as each pair's score and ``grade - lowest grade`` as its gain; a product counts
    as *relevant* (MRR, MAP, Recall) when its gain is at least half the largest gain.
    """
    if probabilities is None and scores is None:
        raise ValueError("give probabilities, scores or both")
    labels = dataset.labels
    if probabilities is not None:
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if probabilities.shape != (len(dataset), labels.num_classes):
            raise ValueError(f"probabilities must be [{len(dataset)}, {labels.num_classes}], got {probabilities.shape}")
        predicted_class = probabilities.argmax(axis=1)
        predicted_grade = probabilities @ np.asarray(labels.grades) if scores is None else np.asarray(scores, np.float64)
    else:
        predicted_grade = np.asarray(scores, dtype=np.float64).reshape(-1)
        predicted_class = labels.with_cuts(cuts).class_of_grade(predicted_grade)
    if len(predicted_grade) != len(dataset):
        raise ValueError(f"{len(predicted_grade)} scores for {len(dataset)} pairs")
    report = _blocks(dataset, predicted_class, predicted_grade, ks)
    report["counts"] = {"pairs": len(dataset), "queries": int(dataset.frame["query_id"].nunique())}
    report["by_language"] = {}
    languages = dataset.frame["language"].to_numpy()
    for language in sorted(set(languages)):
        rows = np.flatnonzero(languages == language)
        block = _blocks(dataset.subset(rows), predicted_class[rows], predicted_grade[rows], ks)
        block["counts"] = {"pairs": int(len(rows)),
                           "queries": int(dataset.frame["query_id"].iloc[rows].nunique())}
        report["by_language"][language] = block
    return report


def _blocks(dataset: PairDataset, predicted_class: np.ndarray, predicted_grade: np.ndarray,
            ks: Sequence[int]) -> dict:
    frame = dataset.frame
    labels = dataset.labels
    gains = frame["grade"].to_numpy() - labels.grade_range[0]
    top_gain = labels.grade_range[1] - labels.grade_range[0]
    return {
        "classification": classification_report(frame["label"].to_numpy(), predicted_class, labels.names),
        "regression": regression_report(frame["grade"].to_numpy(), predicted_grade),
        "ranking": ranking_metrics(frame["query_id"].to_numpy(), predicted_grade, gains, ks=ks,
                                   relevance_threshold=top_gain / 2),
    }


def save_report(report: dict, path: str | Path) -> Path:
    """Write the report as JSON atomically (temporary file + rename)."""
    path = Path(path)
    atomic_write_text(path, json.dumps(report, indent=2, ensure_ascii=False, default=_json_default))
    return path


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def format_report(report: dict) -> str:
    """A compact, readable table: overall and per-language headline metrics."""
    columns = ("pairs", "accuracy", "macro_f1", "rmse", "spearman", "ndcg@10", "mrr", "map")
    lines = [" ".join(f"{c:>9}" for c in ("", *columns))]
    rows = [("all", report)] + sorted(report.get("by_language", {}).items())
    for name, block in rows:
        values = headline_metrics(block)
        lines.append(" ".join([f"{name:>9}"] + [_cell(values.get(c)) for c in columns]))
    return "\n".join(lines)


def headline_metrics(block: dict) -> dict:
    """The metrics a person reads first from a report (or one of its per-language blocks):
    pairs, accuracy, macro-F1, RMSE, Spearman, nDCG@10, MRR, MAP; None where a block lacks one."""
    classification, regression, ranking = block.get("classification", {}), block.get("regression", {}), block.get("ranking", {})
    return {"pairs": block.get("counts", {}).get("pairs"), "accuracy": classification.get("accuracy"),
            "macro_f1": classification.get("macro", {}).get("f1"), "rmse": regression.get("rmse"),
            "spearman": regression.get("spearman"), "ndcg@10": ranking.get("ndcg@10"),
            "mrr": ranking.get("mrr"), "map": ranking.get("map")}


def _cell(value) -> str:
    if value is None:
        return f"{'-':>9}"
    if isinstance(value, int):
        return f"{value:>9d}"
    return f"{value:>9.4f}"
