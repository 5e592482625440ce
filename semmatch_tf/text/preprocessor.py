"""The pair preprocessor: raw (query, product) strings -> fixed-length id tensors.

Following keras-hub's Backbone / Preprocessor / Task split, the preprocessor is the only piece that
knows about text. It runs in ``tf.data`` for training and is wrapped around the model at export so
the serving signature takes raw strings.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from semmatch_tf.text.tokenizer import WordPieceTokenizer
from semmatch_tf.text.units import normalize_units_graph


@keras.saving.register_keras_serializable(package="semmatch_tf")
class PairPreprocessor(keras.layers.Layer):
    """Tokenizes ``{"query": strings, "product": strings}`` into ``{"query": ids, "product": ids}``.

    Both sides share one tokenizer (one vocabulary, one embedding table); each is truncated and
    right-padded to its own length (queries are short, titles longer). Right padding with id 0 keeps
    the masks cuDNN-compatible on GPUs.

    Args:
        tokenizer: the shared :class:`WordPieceTokenizer`.
        query_length, product_length: ids per side after truncation and padding.
        normalize_units: first write units and numbers one way on both sides
            (:func:`~semmatch_tf.text.units.normalize_units_graph`: ``12"`` / ``12 in.`` /
            ``12-inch`` -> ``12 in``), inside the graph, so that an exported model sees the text
            exactly as training did.
        pair_features: a layer mapping the raw pair to ``[B, F]`` float features (such as
            ``semmatch_tf.models.tfidf.MatchFeatures``), returned as ``"match_features"``.
    """

    def __init__(self, tokenizer: WordPieceTokenizer, *, query_length: int = 16, product_length: int = 48,
                 normalize_units: bool = False, pair_features: keras.layers.Layer | None = None, **kwargs) -> None:
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        if query_length < 1 or product_length < 1:
            raise ValueError(f"lengths must be positive, got {query_length}, {product_length}")
        self.tokenizer = tokenizer
        self.query_length = query_length
        self.product_length = product_length
        self.normalize_units = bool(normalize_units)
        self.pair_features = pair_features

    @property
    def vocabulary(self) -> list[str]:
        return self.tokenizer.vocabulary

    def facts(self) -> dict:
        """What an export's metadata records about the text side (vocabulary hash, lengths)."""
        tokenizer = self.tokenizer
        return {"vocabulary_sha256": tokenizer.vocabulary_sha256, "vocabulary_size": tokenizer.vocabulary_size,
                "sequence_lengths": {"query": self.query_length, "product": self.product_length},
                "tokenizer": {"lowercase": tokenizer.lowercase, "strip_accents": tokenizer.strip_accents,
                              "start_token": tokenizer.start_token},
                "normalize_units": self.normalize_units,
                **({"match_features": self.pair_features.name} if self.pair_features is not None else {})}

    def encode(self, strings: tf.Tensor, length: int | None) -> tf.Tensor | tf.RaggedTensor:
        """Token ids for one side, dense ``[batch, length]`` or ragged when ``length`` is None."""
        if self.normalize_units:
            strings = normalize_units_graph(strings)
        ids = self.tokenizer(strings)
        if isinstance(ids, tf.RaggedTensor) and length is not None:
            ids = ids[:, :length].to_tensor(default_value=self.tokenizer.pad_id, shape=[None, length])
        return ids

    def call(self, inputs: dict, ragged: bool = False) -> dict:
        outputs = {
            "query": self.encode(inputs["query"], None if ragged else self.query_length),
            "product": self.encode(inputs["product"], None if ragged else self.product_length),
        }
        if self.pair_features is not None:
            outputs["match_features"] = self.pair_features({"query": inputs["query"], "product": inputs["product"]})
        return outputs

    def compute_output_spec(self, inputs, ragged: bool = False):
        batch = inputs["query"].shape[0]
        spec = {"query": keras.KerasTensor((batch, self.query_length), dtype="int32"),
                "product": keras.KerasTensor((batch, self.product_length), dtype="int32")}
        if self.pair_features is not None:
            spec["match_features"] = self.pair_features.compute_output_spec(inputs)
        return spec

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(tokenizer=keras.saving.serialize_keras_object(self.tokenizer),
                      query_length=self.query_length, product_length=self.product_length,
                      normalize_units=self.normalize_units)
        if self.pair_features is not None:
            config["pair_features"] = keras.saving.serialize_keras_object(self.pair_features)
        return config

    @classmethod
    def from_config(cls, config: dict) -> "PairPreprocessor":
        config = dict(config)
        config["tokenizer"] = keras.saving.deserialize_keras_object(config["tokenizer"])
        if config.get("pair_features") is not None:
            config["pair_features"] = keras.saving.deserialize_keras_object(config["pair_features"])
        return cls(**config)
