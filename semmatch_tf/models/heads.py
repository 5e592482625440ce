"""Output heads and the conversion of model outputs into relevance scores."""

from __future__ import annotations

import keras
import numpy as np

from semmatch_tf.data.schema import LabelScheme

HEADS = ("classification", "regression")
HEAD_LAYERS = {"classification": "probabilities", "regression": "grade"}  # the names output_head gives


def output_head(head: str, num_classes: int) -> keras.layers.Layer:
    """The final layer, always float32 so softmax/sigmoid stay stable under mixed precision."""
    if head == "classification":
        return keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=HEAD_LAYERS[head])
    if head == "regression":
        return keras.layers.Dense(1, activation="sigmoid", dtype="float32", name=HEAD_LAYERS[head])
    raise ValueError(f"head must be one of {HEADS}, got {head!r}")


def representation_model(model: keras.Model, head: str) -> keras.Model:
    """The part of a cross-encoder before its head: token features -> the pooled pair vector the
    head reads (BiLSTM: the hidden layer's output; BERT: the [CLS] or mean pooling). What the
    model makes of a pair, for TensorBoard's projector; shares the model's weights."""
    return keras.Model(model.inputs, model.get_layer(HEAD_LAYERS[head]).input, name=f"{model.name}_representation")


def loss_for(head: str) -> keras.losses.Loss:
    if head == "classification":
        return keras.losses.SparseCategoricalCrossentropy()
    return keras.losses.MeanSquaredError()


def metrics_for(head: str) -> list:
    if head == "classification":
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    return [keras.metrics.RootMeanSquaredError(name="rmse")]


def predicted_grades(outputs: np.ndarray, head: str, labels: LabelScheme) -> np.ndarray:
    """The predicted grade of each pair: the expected grade under the softmax, or the
    de-normalised regression output. This one number ranks products for a query."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if head == "classification":
        return outputs @ np.asarray(labels.grades, dtype=np.float64)
    return labels.denormalise(outputs.reshape(-1))
