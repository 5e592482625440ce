"""CoSENT: an order-only loss for bi-encoders on graded pairs.

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
