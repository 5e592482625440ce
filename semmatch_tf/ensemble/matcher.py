"""The ensemble matcher: members' outputs combined linearly, in NumPy and in one TF graph."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from semmatch_tf.data.padding import trim_packed_padding
from semmatch_tf.data.schema import LabelScheme, PairDataset
from semmatch_tf.models.heads import predicted_grades

METHODS = ("average", "stacked")


class EnsembleInputs(keras.layers.Layer):
    """The ensemble's "preprocessor": raw strings pass through (each member tokenizes its own way
    inside :class:`EnsembleModel`); it carries the members' preprocessors and facts for the export."""

    def __init__(self, preprocessors: Sequence, **kwargs) -> None:
        super().__init__(trainable=False, **kwargs)
        self.preprocessors = list(preprocessors)

    def build(self, input_shape=None) -> None:
        self.built = True

    def call(self, inputs):
        return inputs

    @property
    def vocabulary(self) -> None:
        return None  # several members, several vocabularies (their hashes are in facts())

    def facts(self) -> dict:
        return {"ensemble_members": [p.facts() for p in self.preprocessors]}


class EnsembleModel(keras.layers.Layer):
    """``{"query", "product"}`` strings -> combined output: ``sum_i w_i * out_i (+ bias)``.

    ``head="classification"``: members' class probabilities, weights summing to 1 (still
    probabilities). ``head="regression"``: each member's predicted grade on the unit scale (a
    classifier's expected grade), plus ``bias``, clipped to [0, 1]: ``[B, 1]``. A layer, not a
    ``keras.Model``: a Model would have Keras trace a default serving function over inputs it
    infers as numbers, where these are strings.
    """

    def __init__(self, members: Sequence, weights: Sequence[float], bias: float, head: str, labels: LabelScheme,
                 **kwargs) -> None:
        super().__init__(trainable=False, **kwargs)
        self.member_preprocessors = [m.preprocessor for m in members]
        self.member_models = [m.model for m in members]
        self.member_heads = [m.head for m in members]
        self.member_labels = [m.labels for m in members]
        self.combination = [float(w) for w in weights]
        self.bias, self.head, self.labels = float(bias), head, labels

    def build(self, input_shape=None) -> None:
        self.built = True

    def call(self, inputs, training=False):
        total = None
        for preprocessor, model, head, labels, weight in zip(self.member_preprocessors, self.member_models,
                                                              self.member_heads, self.member_labels, self.combination):
            features = trim_packed_padding(preprocessor({"query": inputs["query"], "product": inputs["product"]}))
            outputs = tf.cast(model(features, training=False), tf.float32)
            if self.head == "regression":
                outputs = _unit_grades(outputs, head, labels)
            total = weight * outputs if total is None else total + weight * outputs
        if self.head == "regression":
            total = tf.clip_by_value(total + self.bias, 0.0, 1.0)
        return total


def _unit_grades(outputs: tf.Tensor, head: str, labels: LabelScheme) -> tf.Tensor:
    """A member's output as a grade on [0, 1] of its grade range, ``[B, 1]``."""
    if head == "regression":
        return outputs[:, :1]
    low, high = labels.grade_range
    grades = tf.linalg.matvec(outputs, tf.constant(labels.grades, tf.float32))
    return ((grades - low) / (high - low))[:, None]


@dataclasses.dataclass
class EnsembleMatcher:
    """Members combined with ``weights`` (and ``bias`` on the unit grade scale for a regression
    output); quacks like a ``TrainedMatcher`` so evaluation and ``export_model`` take it."""

    members: list
    weights: np.ndarray
    bias: float
    head: str
    labels: LabelScheme
    method: str = "average"
    run_dir: None = None

    def __post_init__(self) -> None:
        self.weights = np.asarray(self.weights, np.float64)
        self.preprocessor = EnsembleInputs([m.preprocessor for m in self.members], name="ensemble_inputs")
        self.model = EnsembleModel(self.members, self.weights, self.bias, self.head, self.labels, name="ensemble")

    def member_outputs(self, queries, products, batch_size: int = 256) -> list[np.ndarray]:
        """Each member's output in the ensemble's terms: probabilities, or unit grades ``[N, 1]``."""
        outputs = []
        for member in self.members:
            raw = member.predict_outputs(queries, products, batch_size)
            outputs.append(raw if self.head == "classification" else unit_grades(raw, member.head, member.labels))
        return outputs

    def predict_outputs(self, queries, products, batch_size: int = 256) -> np.ndarray:
        """The combined outputs, computed from each member's own ``predict_outputs`` (NumPy)."""
        parts = self.member_outputs(queries, products, batch_size)
        total = sum(w * p.astype(np.float64) for w, p in zip(self.weights, parts))
        if self.head == "regression":
            total = np.clip(total + self.bias, 0.0, 1.0)
        return np.asarray(total, np.float32)

    def score(self, queries, products, batch_size: int = 256) -> np.ndarray:
        return self.grades_of(self.predict_outputs(queries, products, batch_size))

    def grades_of(self, outputs: np.ndarray) -> np.ndarray:
        return predicted_grades(outputs, self.head, self.labels)

    def predict_dataset(self, dataset: PairDataset, batch_size: int = 256) -> np.ndarray:
        return self.predict_outputs(dataset.frame["query"].tolist(), dataset.frame["product"].tolist(), batch_size)

    def describe(self) -> dict:
        """What an ensemble.json records: method, head, weights, bias and the members' run dirs."""
        return {"method": self.method, "head": self.head, "weights": [float(w) for w in self.weights],
                "bias": float(self.bias),
                "members": [str(m.run_dir) if m.run_dir else m.preprocessor.facts().get("model") for m in self.members]}


def unit_grades(outputs: np.ndarray, head: str, labels: LabelScheme) -> np.ndarray:
    """NumPy twin of the in-graph conversion: a member's outputs as unit grades ``[N, 1]``."""
    grades = predicted_grades(outputs, head, labels)
    return np.asarray(labels.normalise(grades), np.float64).reshape(-1, 1)


def build_ensemble(members: Sequence, method: str = "average", validation: PairDataset | None = None,
                   l2: float = 1e-3) -> EnsembleMatcher:
    """An :class:`EnsembleMatcher` of ``members`` (loaded cross-encoder runs).

    Args:
        members: two or more ``TrainedMatcher`` (or ensembles) scoring the same kind of labels.
        method: ``"average"`` (equal weights) or ``"stacked"`` (weights fitted on ``validation``
            by :func:`fit_stacking_weights`; pass held-out pairs none of the members trained on).
        validation: the held-out pairs for stacking.
        l2: ridge penalty of the stacking fit.

    The output is a classification head when every member is one with the same classes (the
    probabilities are combined), else a regression head on the unit grade scale.

    Examples:
        >>> build_ensemble([], "average")
        Traceback (most recent call last):
        ...
        ValueError: an ensemble needs at least one member, got 0
    """
    members = list(members)
    if not members:
        raise ValueError("an ensemble needs at least one member, got 0")
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    labels = members[0].labels.with_cuts(None)  # a member's tuned cuts fit its own grades, not the blend's
    for member in members[1:]:
        if tuple(member.labels.grade_range) != tuple(labels.grade_range):
            raise ValueError(f"members score different grade ranges: {labels.grade_range} and {member.labels.grade_range}")
    same_classes = all(m.head == "classification" and list(m.labels.names) == list(labels.names)
                       and list(m.labels.grades) == list(labels.grades) for m in members)
    head = "classification" if same_classes else "regression"
    weights, bias = np.full(len(members), 1.0 / len(members)), 0.0
    if method == "stacked":
        if validation is None or not len(validation):
            raise ValueError("method 'stacked' needs validation pairs (held out from every member's training)")
        probe = EnsembleMatcher(members, weights, bias, head, labels, method)
        parts = probe.member_outputs(validation.frame["query"].tolist(), validation.frame["product"].tolist())
        grades = np.hstack([unit_grades(p, head, labels) if head == "classification" else p for p in parts])
        weights, bias = fit_stacking_weights(grades, labels.normalise(validation.frame["grade"].to_numpy()),
                                             simplex=head == "classification", l2=l2)
    return EnsembleMatcher(members, weights, bias, head, labels, method)


def fit_stacking_weights(member_grades: np.ndarray, target: np.ndarray, *, simplex: bool = False,
                         l2: float = 1e-3) -> tuple[np.ndarray, float]:
    """Ridge regression of held-out unit grades on the members' ``[N, M]`` unit grades -> ``(weights,
    bias)``. ``simplex=True`` (combining probabilities): no bias, weights clipped at 0 and
    normalised to sum to 1 (equal weights if none is positive).

    Examples:
        >>> x = np.array([[0.0, 0.2], [0.5, 0.4], [1.0, 0.9]])
        >>> w, b = fit_stacking_weights(x, x[:, 0])
        >>> bool(w[0] > 0.9)
        True
    """
    x, y = np.asarray(member_grades, np.float64), np.asarray(target, np.float64)
    n, m = x.shape
    if simplex:
        weights = np.linalg.solve(x.T @ x + l2 * n * np.eye(m), x.T @ y)
        weights = np.clip(weights, 0.0, None)
        return (weights / weights.sum() if weights.sum() > 0 else np.full(m, 1.0 / m)), 0.0
    mean_x, mean_y = x.mean(axis=0), y.mean()
    centred = x - mean_x
    weights = np.linalg.solve(centred.T @ centred + l2 * n * np.eye(m), centred.T @ (y - mean_y))
    return weights, float(mean_y - mean_x @ weights)
