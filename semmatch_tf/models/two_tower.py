"""The bi-encoder's training model: two towers over ``{"query", "product"[, "negatives"]}``
returning the temperature-scaled similarity matrix (in-batch softmax) or the per-pair cosine
(cosine regression), with shared or separate towers, writing its own loss as a TensorFlow
Recommenders model does. The towers come from :mod:`semmatch_tf.models.bi_encoder`.
"""

from __future__ import annotations

import keras
from keras import ops

from semmatch_tf.losses import in_batch_softmax_loss

OUTPUTS = ("similarities", "cosine")


def _merge_leading(inputs):
    """``[B, H, ...]`` -> ``[B*H, ...]`` for every tensor of a (possibly nested) input."""
    return keras.tree.map_structure(lambda x: ops.reshape(x, (-1, *x.shape[2:])), inputs)


@keras.saving.register_keras_serializable(package="semmatch_tf")
class TwoTowerModel(keras.Model):
    """Two towers over ``{"query", "product"[, "negatives"]}`` inputs.

    ``output="similarities"``: ``[B, B + B*H]`` cosines divided by ``temperature``; row ``i``
    column ``j < B`` compares query ``i`` with product ``j`` (the positive of query ``i`` is column
    ``i``), columns ``B..`` are the ``H`` hard negatives of every row, flattened and shared by the
    batch. ``output="cosine"``: ``[B]`` cosine of each aligned (query, product) pair.

    The model writes its own loss, as a TensorFlow Recommenders model does: batches of
    ``{"query", "product"[, "negatives"]}`` with no labels train the in-batch softmax (each query's
    positive is its own row's product, so there is nothing to label); batches with labels (graded
    pairs, ``output="cosine"``) go to the loss given to ``compile``.

    Pass one tower (``product_tower=None``) for a siamese, shared-weights bi-encoder: right for
    short symmetric texts and small data; separate towers let queries and titles specialise.
    """

    def __init__(self, query_tower: keras.Model, product_tower: keras.Model | None = None, *,
                 temperature: float = 0.05, output: str = "similarities", **kwargs) -> None:
        super().__init__(**kwargs)
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.query_tower = query_tower
        self.product_tower = product_tower if product_tower is not None else query_tower
        self.temperature = float(temperature)
        self.output_kind = output
        self.built = True  # the towers are functional models, built on construction

    @property
    def shared(self) -> bool:
        return self.product_tower is self.query_tower

    def build(self, input_shape=None) -> None:
        self.built = True  # nothing of our own to create

    def call(self, inputs: dict, training=None):
        queries = self.query_tower(inputs["query"], training=training)
        products = self.product_tower(inputs["product"], training=training)
        if self.output_kind == "cosine":
            return ops.sum(queries * products, axis=-1)
        if "negatives" in inputs:
            negatives = self.product_tower(_merge_leading(inputs["negatives"]), training=training)
            products = ops.concatenate([products, negatives], axis=0)
        return ops.matmul(queries, ops.transpose(products)) / self.temperature

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The in-batch softmax of ``y_pred`` when the batch has no labels (plus the layers'
        regularisation losses); otherwise Keras' compiled loss of ``(y, y_pred)``."""
        if y is not None or self.output_kind != "similarities":
            return super().compute_loss(x, y, y_pred, sample_weight, training)
        loss = ops.mean(in_batch_softmax_loss(y_pred))
        return loss + ops.sum(self.losses) if self.losses else loss

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable,
                "query_tower": keras.saving.serialize_keras_object(self.query_tower),
                "product_tower": None if self.shared else keras.saving.serialize_keras_object(self.product_tower),
                "temperature": self.temperature, "output": self.output_kind}

    @classmethod
    def from_config(cls, config: dict) -> "TwoTowerModel":
        config = dict(config)
        config["query_tower"] = keras.saving.deserialize_keras_object(config["query_tower"])
        if config.get("product_tower") is not None:
            config["product_tower"] = keras.saving.deserialize_keras_object(config["product_tower"])
        return cls(**config)
