"""Bi-encoder losses, one per file (as sentence-transformers' ``losses/``).

* :mod:`~semmatch_tf.losses.in_batch_softmax`: query -> its positive among the batch's products.
* :mod:`~semmatch_tf.losses.cosine_regression`: cosine regressed onto the grade.
* :mod:`~semmatch_tf.losses.cosent`: only the order of the cosines (for pretrained encoders).

Cross-encoders train with Keras' own pointwise losses (:func:`semmatch_tf.models.heads.loss_for`).

Examples:

>>> import numpy as np
>>> from semmatch_tf.losses import cosent_loss
>>> float(cosent_loss(np.array([1.0, 0.0]), np.array([0.9, 0.1]))) < float(
...     cosent_loss(np.array([1.0, 0.0]), np.array([0.1, 0.9])))
True
"""

from semmatch_tf.losses.cosent import CoSENTLoss, cosent_loss
from semmatch_tf.losses.cosine_regression import TARGET_RANGES, CosineRegressionLoss, cosine_regression_loss
from semmatch_tf.losses.in_batch_softmax import (InBatchSoftmaxLoss, in_batch_accuracy, in_batch_metrics,
                                                 in_batch_softmax_loss)

__all__ = ["CoSENTLoss", "cosent_loss", "CosineRegressionLoss", "cosine_regression_loss", "TARGET_RANGES",
           "InBatchSoftmaxLoss", "in_batch_softmax_loss", "in_batch_accuracy", "in_batch_metrics"]
