"""The in-graph WordPiece tokenizer shared by tf.data pipelines and exported models."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from semmatch_tf.text.normalize import split_words
from semmatch_tf.text.vocabulary import (CLS, PAD, SEP, SPECIAL_TOKENS, SUFFIX_INDICATOR, UNK,
                                         load_vocabulary, save_vocabulary, vocabulary_hash)

VOCABULARY_ASSET = "vocabulary.txt"


@keras.saving.register_keras_serializable(package="semmatch_tf")
class WordPieceTokenizer(keras.layers.Layer):
    """Raw strings -> WordPiece ids, all in TensorFlow ops (no Python at serving time).

    Normalisation and word splitting are :func:`semmatch_tf.text.normalize.split_words` (CJK per
    character, Latin by words); words are then cut into WordPiece pieces with TF Text's
    ``FastWordpieceTokenizer``.

    Args:
        vocabulary: a list of tokens or the path of a vocab.txt file; must start with
            ``[PAD], [UNK], [CLS], [SEP], [MASK]`` (ids 0-4) so id 0 is padding.
        sequence_length: if set, outputs are dense ``int32 [batch, sequence_length]``, truncated
            and right-padded with 0; if ``None``, a ragged tensor.
        start_token: prepend ``[CLS]`` so that even an empty string has one unmasked token (a fully
            masked LSTM row has no defined state) and a pooled position exists.
        lowercase / strip_accents: normalisation switches (see ``normalize``).

    The vocabulary is saved as an asset (``vocabulary.txt``) in ``.keras`` files, not in the config.
    """

    def __init__(self, vocabulary: list[str] | str | Path | None = None, *, sequence_length: int | None = None,
                 start_token: bool = True, lowercase: bool = True, strip_accents: bool = True,
                 **kwargs) -> None:
        kwargs.setdefault("dtype", "int32")
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        if sequence_length is not None and sequence_length < 1:
            raise ValueError(f"sequence_length must be positive, got {sequence_length}")
        self.sequence_length = sequence_length
        self.start_token = start_token
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self._vocabulary: list[str] | None = None
        self._wordpiece = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    # -- vocabulary ---------------------------------------------------------------------------
    def set_vocabulary(self, vocabulary: list[str] | str | Path) -> None:
        if isinstance(vocabulary, (str, Path)):
            vocabulary = load_vocabulary(vocabulary)
        vocabulary = list(vocabulary)
        if tuple(vocabulary[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"vocabulary must start with {SPECIAL_TOKENS}, got {vocabulary[:5]}")
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("vocabulary has duplicate tokens")
        self._vocabulary = vocabulary
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=vocabulary, suffix_indicator=SUFFIX_INDICATOR, max_bytes_per_word=100,
            token_out_type=tf.int32, unknown_token=UNK, no_pretokenization=True,
            support_detokenization=True)

    @property
    def vocabulary(self) -> list[str]:
        if self._vocabulary is None:
            raise ValueError("tokenizer has no vocabulary yet: pass one or call set_vocabulary()")
        return list(self._vocabulary)

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    @property
    def vocabulary_sha256(self) -> str:
        return vocabulary_hash(self.vocabulary)

    def token_to_id(self, token: str) -> int:
        return self.vocabulary.index(token)

    @property
    def pad_id(self) -> int:
        return SPECIAL_TOKENS.index(PAD)

    @property
    def cls_id(self) -> int:
        return SPECIAL_TOKENS.index(CLS)

    @property
    def sep_id(self) -> int:
        return SPECIAL_TOKENS.index(SEP)

    # -- graph ops ----------------------------------------------------------------------------
    def tokenize(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """Ragged WordPiece ids ``[batch, (tokens)]`` with no start token and no truncation."""
        if self._wordpiece is None:
            raise ValueError("tokenizer has no vocabulary yet: pass one or call set_vocabulary()")
        strings = tf.convert_to_tensor(strings, dtype=tf.string)
        scalar = strings.shape.rank == 0
        words = split_words(tf.reshape(strings, [-1]), lowercase=self.lowercase,
                            strip_accents=self.strip_accents)
        pieces = self._wordpiece.tokenize(words).merge_dims(-2, -1)
        return pieces[0] if scalar else pieces

    def call(self, strings: tf.Tensor) -> tf.Tensor | tf.RaggedTensor:
        ids = self.tokenize(strings)
        if self.start_token:
            starts = tf.fill([ids.nrows(), 1], tf.constant(self.cls_id, tf.int32))
            ids = tf.concat([tf.RaggedTensor.from_tensor(starts), ids], axis=1)
        if self.sequence_length is None:
            return ids
        ids = ids[:, : self.sequence_length]
        return ids.to_tensor(default_value=self.pad_id, shape=[None, self.sequence_length])

    def detokenize(self, ids: tf.Tensor) -> tf.Tensor:
        """Ids back to text (words joined by spaces); padding and special tokens dropped."""
        ids = tf.ragged.boolean_mask(ids, ids >= len(SPECIAL_TOKENS))
        return self._wordpiece.detokenize(ids)

    def compute_output_spec(self, inputs, *args, **kwargs):
        return keras.KerasTensor((inputs.shape[0], self.sequence_length), dtype="int32")

    # -- serialisation ------------------------------------------------------------------------
    def get_config(self) -> dict:
        config = super().get_config()
        config.update(sequence_length=self.sequence_length, start_token=self.start_token,
                      lowercase=self.lowercase, strip_accents=self.strip_accents)
        return config

    def save_assets(self, dir_path: str) -> None:
        save_vocabulary(self.vocabulary, Path(dir_path) / VOCABULARY_ASSET)

    def load_assets(self, dir_path: str) -> None:
        self.set_vocabulary(Path(dir_path) / VOCABULARY_ASSET)
