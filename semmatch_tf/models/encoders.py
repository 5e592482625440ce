"""Small composable text encoders shared by cross-encoders and bi-encoder towers."""

from __future__ import annotations

import keras
from keras import ops

POOLINGS = ("last", "max", "mean")


@keras.saving.register_keras_serializable(package="semmatch_tf")
class MaskedPooling(keras.layers.Layer):
    """Max or mean over the time axis that ignores padded positions."""

    def __init__(self, mode: str = "mean", **kwargs) -> None:
        super().__init__(**kwargs)
        if mode not in ("max", "mean"):
            raise ValueError(f"pooling mode must be 'max' or 'mean', got {mode!r}")
        self.mode = mode
        self.supports_masking = True

    def call(self, sequences, mask=None):
        if mask is None:
            return ops.max(sequences, axis=1) if self.mode == "max" else ops.mean(sequences, axis=1)
        weights = ops.cast(mask, sequences.dtype)[:, :, None]
        if self.mode == "max":
            lowest = ops.convert_to_tensor(-1e4 if sequences.dtype == "float16" else -1e9, sequences.dtype)
            return ops.max(ops.where(weights > 0, sequences, lowest), axis=1)
        total = ops.sum(sequences * weights, axis=1)
        return total / ops.maximum(ops.sum(weights, axis=1), ops.convert_to_tensor(1.0, sequences.dtype))

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="semmatch_tf")
class BiLSTMEncoder(keras.layers.Layer):
    """Token ids -> one vector: Embedding(mask_zero) -> Bidirectional(LSTM) -> pooling.

    With ``pooling="last"`` the final forward and backward states are concatenated (the seeds'
    model); "max"/"mean" pool the per-token outputs under the mask. Output size is ``2 * units``.
    The LSTM keeps Keras defaults (tanh/sigmoid, no recurrent dropout) so the cuDNN kernel is used on
    GPUs; padding is on the right, as cuDNN requires.
    """

    def __init__(self, vocabulary_size: int, *, embedding_dim: int = 128, units: int = 128,
                 pooling: str = "last", embedding_dropout: float = 0.0, extra_features: int = 0,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.pooling = pooling
        self.embedding_dropout = embedding_dropout
        self.extra_features = extra_features
        self.embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True,
                                                name="token_embedding")
        self.dropout = keras.layers.SpatialDropout1D(embedding_dropout) if embedding_dropout else None
        self.bilstm = keras.layers.Bidirectional(
            keras.layers.LSTM(units, return_sequences=pooling != "last"), name="bilstm")
        self.pool = MaskedPooling(pooling) if pooling != "last" else None

    def build(self, token_ids_shape, features_shape=None) -> None:
        self.embedding.build(token_ids_shape)
        embedded = (*token_ids_shape, self.embedding_dim + self.extra_features)
        if self.dropout is not None:
            self.dropout.build(embedded)
        self.bilstm.build(embedded)
        self.built = True

    def call(self, token_ids, features=None, training=None):
        """``features``: optional per-token inputs ``[batch, length, extra_features]`` (such as
        exact-match flags) concatenated to the embeddings before the LSTM."""
        mask = self.embedding.compute_mask(token_ids)
        vectors = self.embedding(token_ids)
        if self.dropout is not None:
            vectors = self.dropout(vectors, training=training)
        if features is not None:
            vectors = ops.concatenate([vectors, ops.cast(features, vectors.dtype)], axis=-1)
        outputs = self.bilstm(vectors, mask=mask, training=training)
        return self.pool(outputs, mask=mask) if self.pool is not None else outputs

    def compute_output_shape(self, token_ids_shape, features_shape=None):
        return (token_ids_shape[0], 2 * self.units)

    def get_config(self) -> dict:
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim, "units": self.units, "pooling": self.pooling,
                "embedding_dropout": self.embedding_dropout, "extra_features": self.extra_features}


@keras.saving.register_keras_serializable(package="semmatch_tf")
class ExactMatchFlags(keras.layers.Layer):
    """Per token: does this WordPiece id occur on the other side? (DrQA's exact-match feature.)

    A siamese encoder sees each side alone and must re-discover shared words through its
    embeddings; one flag per token tells it directly, which matters for search where literal
    overlap (model numbers, brands, CJK characters) carries much of the relevance. Padding and
    special tokens never match. Returns ``([B, Lq, 1], [B, Lp, 1])`` float flags.
    """

    def __init__(self, first_real_id: int = 5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.first_real_id = first_real_id

    def call(self, query_ids, product_ids):
        equal = ops.equal(query_ids[:, :, None], product_ids[:, None, :])
        real_query = query_ids >= self.first_real_id
        real_product = product_ids >= self.first_real_id
        equal = ops.logical_and(equal, ops.logical_and(real_query[:, :, None], real_product[:, None, :]))
        query_flags = ops.cast(ops.any(equal, axis=2), "float32")[:, :, None]
        product_flags = ops.cast(ops.any(equal, axis=1), "float32")[:, :, None]
        return query_flags, product_flags

    def compute_output_shape(self, query_ids_shape, product_ids_shape):
        return (*query_ids_shape, 1), (*product_ids_shape, 1)

    def get_config(self) -> dict:
        return {**super().get_config(), "first_real_id": self.first_real_id}


@keras.saving.register_keras_serializable(package="semmatch_tf")
class InteractionFeatures(keras.layers.Layer):
    """[q, p, |q - p|, q * p]: the classic sentence-pair matching features (InferSent, ESIM)."""

    def call(self, query, product):
        return ops.concatenate([query, product, ops.abs(query - product), query * product], axis=-1)

    def compute_output_shape(self, query_shape, product_shape):
        return (query_shape[0], 4 * query_shape[-1])
