"""Losses for bi-encoders: in-batch softmax (multiple-negatives ranking), cosine regression, CoSENT.

In-batch softmax (a.k.a. multiple-negatives ranking loss, InfoNCE): a batch holds ``B`` (query,
positive product) pairs. Row ``i`` of the similarity matrix ``S [B, B + B*H]`` scores query ``i``
against every product of the batch (columns ``0..B-1``) and, optionally, against ``H`` extra hard
negatives per row (columns ``B..``, shared by the whole batch). The positive of query ``i`` is
column ``i``; every other column is a negative, so the loss is a ``B``-way (or wider) softmax cross
entropy with label ``i``. The *symmetric* option adds the product -> query direction (each product
must pick out its query among the batch's queries, over the ``[B, B]`` block only), as in CLIP.

The bi-encoder model already divides cosines by its temperature; these losses take the scaled
similarities as they are (``temperature=1``) unless told otherwise. ``y_true`` is ignored by the
softmax loss: positives are on the diagonal by construction (the batch packer guarantees no
duplicate query or product, so the diagonal is the only positive of each row).

Cosine regression: for graded pair data (JGLUE JSTS 0-5, Home Depot 1-3) with no notion of "the"
positive, regress the cosine of the two towers' unit vectors onto the grade mapped to ``[-1, 1]``
(the full cosine range; the default) or ``[0, 1]`` (when irrelevant should mean orthogonal rather
than opposite), with mean squared error. Targets arrive as grades normalised onto ``[0, 1]``
(``LabelScheme.normalise``), as the tf.data pipeline yields them for graded heads.

CoSENT (Su 2022; sentence-transformers' ``CoSENTLoss``): for graded pairs, penalise only the
*order* of cosines: every two pairs of a batch where ``i`` is graded above ``j`` but
``cos_j > cos_i`` add ``exp(scale * (cos_j - cos_i))``; the loss is ``log(1 + sum)``. Unlike cosine
regression it does not pull cosines towards fixed targets, so a pretrained encoder whose cosines
live in a narrow band (multilingual-e5: 0.7-1.0) is re-ordered, not first stretched to [-1, 1].
``scale`` is ``1 / model.bi_encoder.temperature`` (20 at the default 0.05, CoSENT's own default).
"""

from __future__ import annotations

import keras
from keras import ops

TARGET_RANGES = ("[-1,1]", "[0,1]")


def in_batch_softmax_loss(similarities, *, temperature: float = 1.0, symmetric: bool = False):
    """Per-query loss ``[B]`` of the in-batch softmax over a ``[B, B + extra]`` similarity matrix.

    Args:
        similarities: ``S[i, j]`` = similarity of query ``i`` and product column ``j``; the first
            ``B`` columns are the batch's positives in query order, further columns are extra
            negatives (hard negatives) shared by every query.
        temperature: logits are ``S / temperature`` (1 when the model has already scaled them).
        symmetric: average with the product -> query loss over the ``[B, B]`` block.
    """
    logits = ops.cast(similarities, "float32") / temperature
    batch = ops.shape(logits)[0]
    labels = ops.arange(batch)
    query_loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    if not symmetric:
        return query_loss
    square = logits[:, :batch]
    product_loss = keras.losses.sparse_categorical_crossentropy(labels, ops.transpose(square), from_logits=True)
    return 0.5 * (query_loss + product_loss)


def cosine_regression_loss(grades, cosines, *, target_range: str = "[-1,1]"):
    """Per-pair squared error ``[B]`` between cosine and the unit grade mapped to ``target_range``."""
    if target_range not in TARGET_RANGES:
        raise ValueError(f"target_range must be one of {TARGET_RANGES}, got {target_range!r}")
    grades = ops.reshape(ops.cast(grades, "float32"), (-1,))
    cosines = ops.reshape(ops.cast(cosines, "float32"), (-1,))
    targets = 2.0 * grades - 1.0 if target_range == "[-1,1]" else grades
    return ops.square(cosines - targets)


@keras.saving.register_keras_serializable(package="semmatch_tf")
class InBatchSoftmaxLoss(keras.losses.Loss):
    """Keras wrapper of :func:`in_batch_softmax_loss`; ``y_true`` is ignored (see module doc)."""

    def __init__(self, temperature: float = 1.0, symmetric: bool = False, name: str = "in_batch_softmax",
                 **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature
        self.symmetric = symmetric

    def call(self, y_true, y_pred):
        return in_batch_softmax_loss(y_pred, temperature=self.temperature, symmetric=self.symmetric)

    def get_config(self) -> dict:
        return {**super().get_config(), "temperature": self.temperature, "symmetric": self.symmetric}


@keras.saving.register_keras_serializable(package="semmatch_tf")
class CosineRegressionLoss(keras.losses.Loss):
    """Keras wrapper of :func:`cosine_regression_loss`: ``y_true`` unit grades, ``y_pred`` cosines."""

    def __init__(self, target_range: str = "[-1,1]", name: str = "cosine_regression", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        if target_range not in TARGET_RANGES:
            raise ValueError(f"target_range must be one of {TARGET_RANGES}, got {target_range!r}")
        self.target_range = target_range

    def call(self, y_true, y_pred):
        return cosine_regression_loss(y_true, y_pred, target_range=self.target_range)

    def get_config(self) -> dict:
        return {**super().get_config(), "target_range": self.target_range}


def in_batch_accuracy(y_true, y_pred):
    """1 where a query's own product (the diagonal) is its best-scored column, else 0."""
    batch = ops.shape(y_pred)[0]
    return ops.cast(ops.equal(ops.argmax(y_pred, axis=-1), ops.arange(batch)), "float32")


def in_batch_metrics() -> list:
    """Training metrics for the in-batch softmax: top-1 accuracy of the positive among the batch."""
    return [keras.metrics.MeanMetricWrapper(in_batch_accuracy, name="in_batch_accuracy")]


def cosent_loss(grades, cosines, *, scale: float = 20.0):
    """CoSENT over a batch: ``log(1 + sum exp(scale * (cos_j - cos_i)))`` over pairs graded ``i > j``."""
    grades = ops.reshape(ops.cast(grades, "float32"), (-1,))
    cosines = ops.reshape(ops.cast(cosines, "float32"), (-1,))
    differences = scale * (cosines[None, :] - cosines[:, None])  # [i, j]: cos_j - cos_i
    ordered = grades[:, None] > grades[None, :]
    differences = ops.where(ordered, differences, ops.full_like(differences, -1e9))
    flat = ops.concatenate([ops.zeros((1,), "float32"), ops.reshape(differences, (-1,))])
    return ops.logsumexp(flat)


@keras.saving.register_keras_serializable(package="semmatch_tf")
class CoSENTLoss(keras.losses.Loss):
    """Keras wrapper of :func:`cosent_loss`: ``y_true`` unit grades, ``y_pred`` cosines, one value per batch."""

    def __init__(self, scale: float = 20.0, name: str = "cosent", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.scale = scale

    def call(self, y_true, y_pred):
        return cosent_loss(y_true, y_pred, scale=self.scale)

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale}
