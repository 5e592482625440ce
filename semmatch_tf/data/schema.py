"""One record schema for judged (query, product) pairs.

Every loader returns a :class:`PairDataset`: a pandas frame with the canonical columns below and a
:class:`LabelScheme` that says what the integer class ids mean and how they map to numeric grades.
Keeping both the class and the grade lets one dataset feed a softmax classifier, a graded
(regression) head and graded ranking metrics (nDCG gains) without re-reading the file.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import pandas as pd

#: Columns every :class:`PairDataset` frame has, in this order.
COLUMNS: tuple[str, ...] = ("query_id", "query", "product_id", "product", "label", "grade", "language")


@dataclasses.dataclass(frozen=True)
class LabelScheme:
    """What the labels of a dataset mean.

    Attributes:
        names: class names, index = class id (ordered from worst to best match).
        grades: the numeric grade of each class (used as the gain of graded ranking metrics and
            as the target of a graded head).
        grade_range: (lowest, highest) possible grade; mean-of-raters grades such as Home Depot's
            1.0-3.0 fall between the class grades.
        cuts: where one class ends and the next begins on the grade scale (``num_classes - 1``
            increasing values; a grade at a cut belongs to the better class). None: halfway between
            class grades, i.e. each grade's nearest class. A regression run may store cuts tuned on
            its validation split (``training.class_cuts``): a graded model that shrinks towards the
            mean grade then still names the rare classes.
    """

    names: tuple[str, ...]
    grades: tuple[float, ...]
    grade_range: tuple[float, float]
    cuts: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.names) < 2:
            raise ValueError(f"a label scheme needs at least two classes, got {self.names!r}")
        if len(self.names) != len(self.grades):
            raise ValueError(f"{len(self.names)} class names but {len(self.grades)} grades")
        low, high = self.grade_range
        if not low < high:
            raise ValueError(f"grade_range must be increasing, got {self.grade_range!r}")
        if any(not low <= g <= high for g in self.grades):
            raise ValueError(f"grades {self.grades!r} fall outside grade_range {self.grade_range!r}")
        if self.cuts is not None:
            cuts = np.asarray(self.cuts, dtype=np.float64)
            if len(cuts) != len(self.grades) - 1 or np.any(np.diff(cuts) <= 0) or not np.all((low <= cuts) & (cuts <= high)):
                raise ValueError(f"cuts must be {len(self.grades) - 1} increasing grades within {self.grade_range!r}, "
                                 f"got {self.cuts!r}")

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def boundaries(self) -> np.ndarray:
        """The cuts between consecutive classes: :attr:`cuts`, or halfway between class grades."""
        if self.cuts is not None:
            return np.asarray(self.cuts, dtype=np.float64)
        grades = np.asarray(self.grades, dtype=np.float64)
        return (grades[1:] + grades[:-1]) / 2

    def class_of_grade(self, grade: np.ndarray | float) -> np.ndarray:
        """The class each (possibly fractional) grade falls in (:attr:`boundaries`): without cuts,
        the class whose grade is nearest; a grade on a boundary goes to the better class."""
        values = np.atleast_1d(np.asarray(grade, dtype=np.float64))
        return np.searchsorted(self.boundaries, values, side="right").astype(np.int64)

    def normalise(self, grade: np.ndarray | float) -> np.ndarray:
        """Map grades linearly onto [0, 1] (the target of a sigmoid graded head)."""
        low, high = self.grade_range
        return (np.asarray(grade, dtype=np.float64) - low) / (high - low)

    def denormalise(self, unit: np.ndarray | float) -> np.ndarray:
        low, high = self.grade_range
        return np.asarray(unit, dtype=np.float64) * (high - low) + low

    def to_dict(self) -> dict:
        cuts = {} if self.cuts is None else {"cuts": list(self.cuts)}
        return {"names": list(self.names), "grades": list(self.grades), "grade_range": list(self.grade_range), **cuts}

    @classmethod
    def from_dict(cls, data: dict) -> "LabelScheme":
        cuts = data.get("cuts")
        return cls(tuple(data["names"]), tuple(float(g) for g in data["grades"]),
                   tuple(float(g) for g in data["grade_range"]),
                   None if cuts is None else tuple(float(c) for c in cuts))

    def with_cuts(self, cuts: Sequence[float] | None) -> "LabelScheme":
        """The same classes with other :attr:`cuts` (None: nearest class grade)."""
        return dataclasses.replace(self, cuts=None if cuts is None else tuple(float(c) for c in cuts))


def text_key(text: str) -> str:
    """The identity of a query or title: case-folded, whitespace collapsed.

    One definition for every "is this the same query?" question: query ids made from query text
    (so case variants of one query land in one split), duplicate checks in the bi-encoder's batch
    packer. ``text_key("Red  Dress") == text_key("red dress")``.
    """
    return " ".join(str(text).casefold().split())

@dataclasses.dataclass
class PairDataset:
    """Judged pairs in the canonical schema plus the meaning of their labels.

    Args:
        frame: columns ``query_id`` (str), ``query`` (str), ``product_id`` (str), ``product``
            (str), ``label`` (int64 class id), ``grade`` (float64), ``language`` (str, ISO 639-1
            such as "en", "zh", "ja", "es"); :func:`build_frame` makes one from lists.
        labels: what the labels mean (:class:`LabelScheme`).
        name: a name for reports and split names.
        source: where the pairs were read from (set by the loaders).

    Examples:
        >>> labels = LabelScheme(("irrelevant", "exact"), (0.0, 1.0), (0.0, 1.0))
        >>> frame = build_frame(query=["red dress"], product=["Red summer dress"], label=[1], grade=[1.0],
        ...                     language="en")
        >>> data = PairDataset(frame, labels, name="mine")
        >>> len(data), data.frame.loc[0, "query_id"]
        (1, 'q0')
    """

    frame: pd.DataFrame
    labels: LabelScheme
    name: str = "pairs"
    #: Where the pairs were read from: ``{"files": {path: encoding}}`` (e.g. ``"latin-1"`` when a
    #: Home Depot file was not valid UTF-8); empty for data built in memory.
    source: dict = dataclasses.field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        missing = [c for c in COLUMNS if c not in self.frame.columns]
        if missing:
            raise ValueError(f"{self.name}: frame lacks canonical columns {missing}")
        self.frame = self.frame.loc[:, list(COLUMNS)].reset_index(drop=True)

    def __len__(self) -> int:
        return len(self.frame)

    def subset(self, rows: Sequence[int] | np.ndarray, name: str | None = None) -> "PairDataset":
        return PairDataset(self.frame.iloc[np.asarray(rows)].reset_index(drop=True), self.labels,
                           name or self.name, self.source)

    def head(self, n: int) -> "PairDataset":
        return self.subset(np.arange(min(n, len(self))), self.name)

    @property
    def languages(self) -> list[str]:
        return sorted(self.frame["language"].unique().tolist())


def build_frame(*, query: Sequence[str], product: Sequence[str], label: Sequence[int],
                grade: Sequence[float], language: Sequence[str] | str,
                query_id: Sequence[str] | None = None,
                product_id: Sequence[str] | None = None) -> pd.DataFrame:
    """Assemble a canonical frame; missing ids are derived from the texts (stable across runs)."""
    n = len(query)
    frame = pd.DataFrame({
        "query": pd.Series(list(query), dtype=object),
        "product": pd.Series(list(product), dtype=object),
        "label": np.asarray(label, dtype=np.int64),
        "grade": np.asarray(grade, dtype=np.float64),
    })
    frame["language"] = [language] * n if isinstance(language, str) else list(language)
    frame["query_id"] = list(query_id) if query_id is not None else _text_ids(frame["query"], "q")
    frame["product_id"] = list(product_id) if product_id is not None else _text_ids(frame["product"], "p")
    frame["query_id"] = frame["query_id"].astype(str)
    frame["product_id"] = frame["product_id"].astype(str)
    return frame.loc[:, list(COLUMNS)]


def _text_ids(texts: pd.Series, prefix: str) -> list[str]:
    """Ids for texts that have none: equal texts share an id, numbered in order of appearance."""
    codes, _ = pd.factorize(texts)
    return [f"{prefix}{c}" for c in codes]
