"""Keras models: the BiLSTM matcher, shared encoders and heads, and a factory from config."""

from semmatch_tf.models.bilstm import BiLSTMMatcher
from semmatch_tf.models.encoders import BiLSTMEncoder, InteractionFeatures, MaskedPooling
from semmatch_tf.models.heads import loss_for, metrics_for, output_head, predicted_grades

__all__ = ["BiLSTMMatcher", "BiLSTMEncoder", "InteractionFeatures", "MaskedPooling", "build_matcher",
           "loss_for", "metrics_for", "output_head", "predicted_grades"]


def build_matcher(model_config, *, vocabulary_size: int, num_classes: int, query_length: int,
                  product_length: int):
    """Build the cross-encoder named by ``model_config.family`` (see training.config.ModelConfig)."""
    if model_config.family == "bilstm":
        return BiLSTMMatcher(vocabulary_size, num_classes=num_classes, head=model_config.head,
                             embedding_dim=model_config.embedding_dim, lstm_units=model_config.lstm_units,
                             hidden_units=model_config.hidden_units, pooling=model_config.pooling,
                             dropout=model_config.dropout, embedding_dropout=model_config.embedding_dropout,
                             query_length=query_length, product_length=product_length, name="bilstm_matcher")
    raise ValueError(f"unknown model family {model_config.family!r}")
