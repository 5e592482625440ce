"""In-batch softmax (multiple-negatives ranking, InfoNCE) for bi-encoders, and its accuracy metric.

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
"""

from __future__ import annotations

import keras
from keras import ops

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


def in_batch_accuracy(y_true, y_pred):
    """1 where a query's own product (the diagonal) is its best-scored column, else 0."""
    batch = ops.shape(y_pred)[0]
    return ops.cast(ops.equal(ops.argmax(y_pred, axis=-1), ops.arange(batch)), "float32")


def in_batch_metrics() -> list:
    """Training metrics for the in-batch softmax: top-1 accuracy of the positive among the batch."""
    return [keras.metrics.MeanMetricWrapper(in_batch_accuracy, name="in_batch_accuracy")]
