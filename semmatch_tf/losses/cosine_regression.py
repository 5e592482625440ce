"""Cosine regression for bi-encoders on graded pairs.

Cosine regression: for graded pair data (JGLUE JSTS 0-5, Home Depot 1-3) with no notion of "the"
positive, regress the cosine of the two towers' unit vectors onto the grade mapped to ``[-1, 1]``
(the full cosine range; the default) or ``[0, 1]`` (when irrelevant should mean orthogonal rather
than opposite), with mean squared error. Targets arrive as grades normalised onto ``[0, 1]``
(``LabelScheme.normalise``), as the tf.data pipeline yields them for graded heads.
"""

from __future__ import annotations

import keras
from keras import ops

TARGET_RANGES = ("[-1,1]", "[0,1]")


def cosine_regression_loss(grades, cosines, *, target_range: str = "[-1,1]"):
    """Per-pair squared error ``[B]`` between cosine and the unit grade mapped to ``target_range``."""
    if target_range not in TARGET_RANGES:
        raise ValueError(f"target_range must be one of {TARGET_RANGES}, got {target_range!r}")
    grades = ops.reshape(ops.cast(grades, "float32"), (-1,))
    cosines = ops.reshape(ops.cast(cosines, "float32"), (-1,))
    targets = 2.0 * grades - 1.0 if target_range == "[-1,1]" else grades
    return ops.square(cosines - targets)


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
