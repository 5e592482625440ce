"""The BERT preprocessor: raw strings -> packed ``token_ids`` / ``segment_ids`` / ``padding_mask``,
all TensorFlow ops (in tf.data, in the run, in the exported SavedModel), and the padding trim."""

from __future__ import annotations

import keras
import keras_hub
import tensorflow as tf

from semmatch_tf.data.padding import trim_packed_padding  # noqa: F401 (re-exported; defined below models)
from semmatch_tf.models.bert.tokenizer import is_sentencepiece, own_tokenizer, special_ids  # noqa: F401 (doctest)
from semmatch_tf.text.vocabulary import vocabulary_hash

PAIR_STYLES = ("bert", "roberta")


@keras.saving.register_keras_serializable(package="semmatch_tf")
class BertPreprocessor(keras.layers.Layer):
    """Strings -> ``{"token_ids", "segment_ids", "padding_mask"}`` (int32 / bool, ``[B, L]``).

    ``{"query": q, "product": p}`` -> ``[CLS] q [SEP] p [SEP]`` with segment ids 0 / 1 and
    round-robin truncation (a long title cannot push the query out); a string tensor ->
    ``[CLS] text [SEP]``. The tokenizer is any layer mapping strings to ragged ids: our WordPiece,
    keras-hub's BertTokenizer, or keras-hub's XLMRobertaTokenizer (SentencePiece).

    Args:
        tokenizer: strings -> ragged token ids.
        sequence_length: packed length (tokens, specials included).
        special_token_ids: ``{"cls", "sep", "pad", "mask"}``; default: read from the tokenizer.
        prefix: prepended to every text of a single-text input (e5's ``"query: "`` / ``"passage: "``).
        query_prefix, product_prefix: prepended to the two sides of a pair input.
        pair_style: ``"bert"`` (``[CLS] q [SEP] p [SEP]``, segments 0/1) or ``"roberta"`` (``<s> q
            </s></s> p </s>``, all segment 0: what XLM-R vocabularies were trained with); default:
            ``"roberta"`` for SentencePiece tokenizers, else ``"bert"``.

    Example:
        >>> import tensorflow as tf
        >>> vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "red", "shoe"]
        >>> pre = BertPreprocessor(own_tokenizer(vocabulary), sequence_length=6)
        >>> pre({"query": tf.constant(["red"]), "product": tf.constant(["red shoe"])})["token_ids"].numpy().tolist()
        [[2, 5, 3, 5, 6, 3]]
    """

    def __init__(self, tokenizer, *, sequence_length: int = 64, special_token_ids: dict[str, int] | None = None,
                 prefix: str = "", query_prefix: str = "", product_prefix: str = "", pair_style: str | None = None,
                 **kwargs) -> None:
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        if sequence_length < 4:
            raise ValueError(f"sequence_length must be at least 4, got {sequence_length}")
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.prefix, self.query_prefix, self.product_prefix = prefix, query_prefix, product_prefix
        self.pair_style = pair_style or ("roberta" if is_sentencepiece(tokenizer) else "bert")
        if self.pair_style not in PAIR_STYLES:
            raise ValueError(f"pair_style must be one of {PAIR_STYLES}, got {self.pair_style!r}")
        # Kept in the config: on loading, the tokenizer's vocabulary (an asset) arrives after __init__.
        ids = self.special_token_ids = dict(special_token_ids or special_ids(tokenizer))
        self.pad_id = ids["pad"]
        separator = [ids["sep"], ids["sep"]] if self.pair_style == "roberta" else ids["sep"]
        self.packer = keras_hub.layers.MultiSegmentPacker(
            sequence_length=sequence_length, start_value=ids["cls"], end_value=ids["sep"], sep_value=separator,
            pad_value=ids["pad"], truncate="round_robin", name="packer")

    @property
    def vocabulary(self) -> list[str]:
        getter = getattr(self.tokenizer, "get_vocabulary", None)  # keras-hub tokenizers
        return list(getter()) if getter else self.tokenizer.vocabulary

    @property
    def vocabulary_sha256(self) -> str:
        return vocabulary_hash(self.vocabulary)

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    def facts(self) -> dict:
        """What an export's metadata records about the text side (vocabulary hash, lengths)."""
        return {"vocabulary_sha256": self.vocabulary_sha256, "vocabulary_size": self.vocabulary_size,
                "sequence_lengths": {"pair": self.sequence_length},
                "tokenizer": {"class": type(self.tokenizer).__name__,
                              "kind": "sentencepiece" if is_sentencepiece(self.tokenizer) else "wordpiece",
                              "lowercase": bool(getattr(self.tokenizer, "lowercase", False)),
                              "strip_accents": bool(getattr(self.tokenizer, "strip_accents", False)),
                              "special_token_ids": self.special_token_ids,
                              "prefixes": {"text": self.prefix, "query": self.query_prefix,
                                           "product": self.product_prefix},
                              "pair_style": self.pair_style}}

    def build(self, input_shape=None) -> None:
        self.built = True  # no weights: the tokenizer's vocabulary is an asset, the packer is stateless

    def _ids(self, strings, prefix: str) -> tf.RaggedTensor:
        strings = tf.reshape(tf.convert_to_tensor(strings, tf.string), [-1])
        if prefix:
            strings = tf.strings.join([prefix, strings])
        ids = self.tokenizer(strings)
        if isinstance(ids, list):  # keras-hub tokenizers called eagerly return Python lists
            return tf.ragged.constant(ids, dtype=tf.int32, ragged_rank=1, inner_shape=())
        return tf.cast(ids, tf.int32)

    def call(self, inputs, **kwargs) -> dict:
        if isinstance(inputs, dict):
            segments = (self._ids(inputs["query"], self.query_prefix), self._ids(inputs["product"], self.product_prefix))
        else:
            segments = (self._ids(inputs, self.prefix),)
        token_ids, segment_ids = self.packer(segments)
        if self.pair_style == "roberta":
            segment_ids = tf.zeros_like(segment_ids)
        return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": token_ids != self.pad_id}

    def compute_output_spec(self, inputs, **kwargs):
        first = inputs["query"] if isinstance(inputs, dict) else inputs
        shape = (first.shape[0], self.sequence_length)
        return {"token_ids": keras.KerasTensor(shape, dtype="int32"),
                "segment_ids": keras.KerasTensor(shape, dtype="int32"),
                "padding_mask": keras.KerasTensor(shape, dtype="bool")}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(tokenizer=keras.saving.serialize_keras_object(self.tokenizer),
                      sequence_length=self.sequence_length, special_token_ids=self.special_token_ids,
                      prefix=self.prefix, query_prefix=self.query_prefix, product_prefix=self.product_prefix,
                      pair_style=self.pair_style)
        return config

    @classmethod
    def from_config(cls, config: dict) -> "BertPreprocessor":
        config = dict(config)
        config["tokenizer"] = keras.saving.deserialize_keras_object(config["tokenizer"])
        return cls(**config)
