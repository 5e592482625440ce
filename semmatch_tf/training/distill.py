"""Knowledge distillation data: a teacher's calibrated grades on pairs nobody judged.

A BiLSTM trained on LCQMC's 8k judged dev pairs learns little (test macro-F1 0.63, under the
character TF-IDF baseline's 0.69), while multilingual-e5-small, zero-shot, reaches 0.83. Tang et
al. 2019 ("Distilling task-specific knowledge from BERT into simple neural networks") close such a
gap by training the small model on the teacher's outputs over many more pairs, some of them made
for the purpose. This module makes those pairs; the student reads them through
``data.extra_train`` and trains on them beside the judged split.

1. :func:`near_pairs`: each anchor text with its nearest other texts by character n-gram TF-IDF,
   lexically close pairs of which many mean something else: the hard cases a matcher must learn.
2. :func:`teacher_calibration`: a smooth monotone map (:class:`SigmoidGrades`) from the teacher's
   score (a cosine, say) to the dataset's grade scale, fitted on the judged training pairs, so the
   student's targets mean what the dataset's grades mean.
3. :func:`teacher_labelled`: unlabelled pairs (other corpora) plus mined pairs, scored by the
   teacher, calibrated, as a :class:`PairDataset` with fractional grades; :func:`save_graded_pairs`
   writes them as JSON lines (``query``, ``product``, ``grade``, ``language``).

No text of the run's validation or test split may reach the teacher file (``exclude``): those
splits must measure the student, not the teacher's knowledge of them.

Examples:
    >>> import numpy as np
    >>> calibration = fit_grade_calibration(np.array([0.1, 0.2, 0.8, 0.9]), np.array([1.0, 1.0, 3.0, 3.0]), (1.0, 3.0))
    >>> calibration.predict(np.array([0.0, 0.5, 1.0])).round(1).tolist()  # smooth, on the 1-3 scale
    [1.0, 2.0, 3.0]
    >>> near_pairs(["red shoe"], ["red shoes", "blue hat", "red shoe"], per_anchor=1)["product"].tolist()
    ['red shoes']
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from semmatch_tf.atomic import atomic_write_text
from semmatch_tf.data.loaders import load_generic
from semmatch_tf.data.schema import LabelScheme, PairDataset, build_frame
from semmatch_tf.runs import is_bi_encoder_run, load_bi_encoder, load_run
from semmatch_tf.training.bi_encoder_evaluation import pair_cosines

#: ``score(queries, products) -> float array``: the teacher, e.g. a zero-shot encoder's cosine.
Scorer = Callable[[list, list], np.ndarray]
#: What a mined pair's second text may be: any text (``all``) or a product text (``products``).
MINE_POOLS = ("all", "products")


def near_pairs(anchors: Sequence[str], pool: Sequence[str], per_anchor: int = 2, block: int = 512,
               known: Iterable[tuple[str, str]] = ()) -> pd.DataFrame:
    """``(query, product)`` pairs: each anchor with its ``per_anchor`` nearest pool texts.

    Nearness is the cosine of character 1-2-gram TF-IDF vectors (sublinear tf), which suits
    Chinese and Japanese (a character is a word) and catches shared words elsewhere. The anchor
    itself and exact copies of it are skipped, and so are the ``known`` ``(anchor, text)`` pairs
    (the judged ones: a query with a dozen judged products still gets ``per_anchor`` new partners);
    pairs are deduplicated.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    anchors, pool = list(dict.fromkeys(anchors)), np.asarray(list(dict.fromkeys(pool)), dtype=object)
    if not anchors or not len(pool) or per_anchor < 1:
        return pd.DataFrame({"query": [], "product": []})
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32)
    pool_vectors = vectorizer.fit(list(pool) + anchors).transform(pool).T.tocsr()
    skip = defaultdict(set)
    for anchor, text in known:
        skip[anchor].add(text)
    # room for the anchor itself (the pool may hold it) and for every known partner of an anchor
    depth = min(len(pool), per_anchor + 1 + max(map(len, skip.values()), default=0))
    rows = []
    for start in range(0, len(anchors), block):
        chunk = anchors[start:start + block]
        similarity = (vectorizer.transform(chunk) @ pool_vectors).toarray()
        nearest = np.argpartition(-similarity, depth - 1, axis=1)[:, :depth]
        for anchor, candidates, scores in zip(chunk, nearest, similarity):
            ordered = candidates[np.argsort(-scores[candidates], kind="stable")]
            rows += [(anchor, text) for text in pool[ordered] if text != anchor and text not in skip[anchor]][:per_anchor]
    return pd.DataFrame(rows, columns=["query", "product"]).drop_duplicates(ignore_index=True)


@dataclasses.dataclass(frozen=True)
class SigmoidGrades:
    """``grade = low + (high - low) * sigmoid(slope * score + intercept)``: Platt scaling onto a
    grade scale. Smooth on purpose: the student learns from how sure the teacher is, which a
    step-wise (isotonic) map flattens into a few values, most of them the scale's ends."""

    slope: float
    intercept: float
    low: float
    high: float

    def predict(self, scores) -> np.ndarray:
        logits = self.slope * np.asarray(scores, np.float64) + self.intercept
        return self.low + (self.high - self.low) / (1.0 + np.exp(-logits))


def fit_grade_calibration(scores: np.ndarray, grades: np.ndarray, grade_range: tuple[float, float]) -> SigmoidGrades:
    """:class:`SigmoidGrades` fitted by cross-entropy against the grades put on [0, 1] (soft
    targets: each score enters once as class 1 with weight ``u`` and once as class 0 with weight
    ``1 - u``, scikit-learn's logistic regression, almost unregularised); for 0/1 labels it is
    the probability of 1 at each score."""
    from sklearn.linear_model import LogisticRegression

    low, high = float(grade_range[0]), float(grade_range[1])
    unit = np.clip((np.asarray(grades, np.float64) - low) / (high - low), 0.0, 1.0)
    column = np.asarray(scores, np.float64).reshape(-1, 1)
    model = LogisticRegression(C=1e4, max_iter=1000).fit(
        np.vstack([column, column]), np.r_[np.ones(len(unit)), np.zeros(len(unit))], sample_weight=np.r_[unit, 1 - unit])
    return SigmoidGrades(float(model.coef_[0, 0]), float(model.intercept_[0]), low, high)


def teacher_scorer(spec: str, length: int):
    """``score(queries, products)``: a run directory's predicted grade (cross-encoder) or cosine
    (bi-encoder), or else a pretrained encoder's zero-shot cosine (a known name such as
    ``multilingual-e5-small`` or a checkpoint directory), both sides embedded as queries
    (symmetric, as e5 advises for pairs of the same kind)."""
    path = Path(spec)
    if (path / "config.yaml").is_file():  # a run
        if not is_bi_encoder_run(path):
            return load_run(path).score
        encoder = load_bi_encoder(path)
    else:
        from semmatch_tf.models import pretrained_encoder

        encoder = pretrained_encoder(spec, query_length=length, product_length=length, symmetric=True)
    return lambda queries, products: pair_cosines(encoder, queries, products, batch_size=128)


def teacher_calibration(score: Scorer, train: PairDataset):
    """The teacher's calibration (:func:`fit_grade_calibration`) on the judged training split."""
    frame = train.frame
    return fit_grade_calibration(score(frame["query"].tolist(), frame["product"].tolist()),
                                 frame["grade"].to_numpy(), train.labels.grade_range)


def teacher_labelled(score: Scorer, calibration, train: PairDataset, unlabelled: Iterable[PairDataset] = (), *,
                     mine: int = 2, mine_pool: str = "all", exclude: Iterable[str] = ()) -> PairDataset:
    """Pairs graded by the teacher on ``train``'s grade scale.

    Args:
        score: the teacher (see :data:`Scorer`).
        calibration: its map to grades (:func:`teacher_calibration`).
        train: the judged training split; its texts anchor the mined pairs.
        unlabelled: other pair datasets whose labels are ignored (only their texts are used).
        mine: nearest texts per training text (:func:`near_pairs`; pool: every text given here); 0: none.
        mine_pool: ``"all"`` pairs any training text with any near text, for tasks whose two sides
            are alike (question pairs); ``"products"`` pairs each training query with near product
            texts only, for query -> product tasks, where a query-query pair means nothing.
        exclude: texts that must not appear (the run's validation and test texts).

    Returns:
        The pairs that survive (no excluded text, no judged training pair, no text paired with
        itself), with ``grade`` the calibrated teacher score and ``label`` its nearest class.
    """
    if mine_pool not in MINE_POOLS:
        raise ValueError(f"mine_pool must be one of {MINE_POOLS}, got {mine_pool!r}")
    pairs = _candidate_pairs(train.frame, list(unlabelled), mine, mine_pool, set(exclude))
    grades = calibration.predict(score(pairs["query"].tolist(), pairs["product"].tolist())) if len(pairs) else np.zeros(0)
    frame = build_frame(query=pairs["query"], product=pairs["product"], grade=grades,
                        label=train.labels.class_of_grade(grades), language=pairs["language"].tolist())
    return PairDataset(frame, train.labels, f"{train.name}+teacher")


def _candidate_pairs(train: pd.DataFrame, unlabelled: list[PairDataset], mine: int, mine_pool: str,
                     exclude: set) -> pd.DataFrame:
    columns = ["query", "product", "language"]
    others = [dataset.frame[columns] for dataset in unlabelled]
    parts = list(others)
    judged = set(zip(train["query"], train["product"])) | set(zip(train["product"], train["query"]))
    if mine:
        sides = ("query", "product") if mine_pool == "all" else ("product",)
        anchors = pd.concat([train["query"], train["product"]]) if mine_pool == "all" else train["query"]
        pool = pd.concat([train[side] for side in sides] + [o[side] for o in others for side in sides])
        mined = near_pairs(anchors.tolist(), pool.tolist(), per_anchor=mine, known=judged)
        language = dict(zip(train["query"], train["language"])) | dict(zip(train["product"], train["language"]))
        parts.append(mined.assign(language=mined["query"].map(language)))
    if not parts:
        return pd.DataFrame(columns=columns)
    pairs = pd.concat(parts, ignore_index=True).astype({"query": str, "product": str})
    keep = ~(pairs["query"].isin(exclude) | pairs["product"].isin(exclude) | (pairs["query"] == pairs["product"]))
    keep &= np.array([pair not in judged for pair in zip(pairs["query"], pairs["product"])], dtype=bool)
    return pairs[keep].drop_duplicates(["query", "product"], ignore_index=True)


def load_graded_pairs(path: str | Path, labels: LabelScheme) -> PairDataset:
    """A graded-pairs JSON lines file (:func:`save_graded_pairs`'s) on ``labels``' grade scale:
    grades outside its range are refused (naming the row); classes are the grades' nearest."""
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        first = handle.readline().strip()
    try:
        record = json.loads(first)
        has_language = isinstance(record, dict) and "language" in record
    except ValueError:  # not JSON: the reader below names the file and row
        has_language = False
    pairs = load_generic(path, label="grade", grade_range=labels.grade_range,
                         language="language" if has_language else None)
    frame = pairs.frame.assign(label=labels.class_of_grade(pairs.frame["grade"].to_numpy()))
    return PairDataset(frame, labels, path.stem, pairs.source)


def save_graded_pairs(dataset: PairDataset, path: str | Path) -> Path:
    """Write ``query``, ``product``, ``grade``, ``language`` as JSON lines, atomically: the file
    ``data.extra_train`` reads (``load_dataset("generic", path, label="grade", ...)``)."""
    frame = dataset.frame[["query", "product", "grade", "language"]]
    text = frame.to_json(orient="records", lines=True, force_ascii=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text if text.endswith("\n") or not text else text + "\n")
    return path
