"""BERT tasks: the cross-encoder (pooled or mean -> dropout -> head) and the bi-encoder tower
(mean pooling + L2 normalisation, sentence-transformers style)."""

from __future__ import annotations

import keras

from semmatch_tf.models.bert.backbone import backbone_inputs
from semmatch_tf.models.encoders import MaskedPooling
from semmatch_tf.models.heads import output_head


def freeze_unused_pooler(backbone) -> None:
    """Mean pooling never reads the backbone's [CLS] pooler (``pooled_dense``): left trainable it gets
    no gradient and Keras warns "Gradients do not exist for variables ['pooled_dense/kernel', ...]"
    on every step's first call. Its weights stay in the model (and its checkpoint) unchanged."""
    pooler = getattr(backbone, "pooled_dense", None)
    if pooler is not None:
        pooler.trainable = False


def build_bert_cross_encoder(backbone, *, num_classes: int, head: str, pooling: str = "cls",
                             dropout: float = 0.1, name: str = "bert_matcher") -> keras.Model:
    """``{"token_ids", "segment_ids", "padding_mask"}`` -> class probabilities or unit grade."""
    inputs = backbone_inputs()
    outputs = backbone(inputs)
    if pooling == "cls":
        pooled = outputs["pooled_output"]
    else:
        freeze_unused_pooler(backbone)
        pooled = MaskedPooling("mean", name="mean_pooling")(outputs["sequence_output"], mask=inputs["padding_mask"])
    pooled = keras.layers.Dropout(dropout, name="head_dropout")(pooled)
    return keras.Model(inputs, output_head(head, num_classes)(pooled), name=name)


def build_bert_tower(backbone, *, projection: int | None = None, name: str = "bert_tower") -> keras.Model:
    """Token inputs -> mean of the unmasked token states -> (optional projection) -> unit vector.

    Mean pooling + L2 normalisation is what sentence-transformers checkpoints such as
    all-MiniLM-L6-v2 were trained with, so a converted checkpoint embeds as its reference does.
    """
    freeze_unused_pooler(backbone)
    inputs = backbone_inputs()
    states = backbone(inputs)["sequence_output"]
    pooled = MaskedPooling("mean", name="mean_pooling")(states, mask=inputs["padding_mask"])
    if projection:
        pooled = keras.layers.Dense(projection, name="projection")(pooled)
    vectors = keras.layers.UnitNormalization(dtype="float32", name="l2_normalise")(pooled)
    return keras.Model(inputs, vectors, name=name)
