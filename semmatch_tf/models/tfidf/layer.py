"""A fitted cheap baseline inside the TF graph: raw strings in, the linear model's output out.

:class:`TfidfPairLinear` recomputes :class:`~semmatch_tf.models.tfidf.linear.PairTfidfFeatures`
(scikit-learn's ``char_wb`` 1-4-gram and word 1-2-gram TF-IDF of each side, their overlap and
cosine, the five overlap statistics) with string ops and lookup tables, and applies the fitted
ridge or logistic regression. It exists so that the strongest cheap baseline can be a member of an
ensemble exported as ONE SavedModel: TF Serving cannot call scikit-learn.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

# Python's str.split() whitespace, which RE2's \s (ASCII) does not cover.
_WHITESPACE = r"[\s\x{0b}\x{1c}-\x{1f}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]+"
_NOT_WORD = r"[^\p{L}\p{N}_]+"  # Python's (?u)\w is letters, numbers and the underscore
_ASCII_PUNCTUATION = r"([!-/:-@\[-`{-~])"


def _split(texts: tf.Tensor) -> tf.RaggedTensor:
    """``str.split()``: runs of any Unicode whitespace separate, empty pieces dropped."""
    return tf.strings.split(tf.strings.regex_replace(texts, _WHITESPACE, " "))


def _lower(texts: tf.Tensor) -> tf.Tensor:
    return tf.strings.lower(tf.reshape(texts, [-1]), encoding="utf-8")


def char_wb_ngrams(words: tf.RaggedTensor, ngram_range: tuple[int, int]) -> tf.RaggedTensor:
    """scikit-learn's ``analyzer="char_wb"`` over the words (``_split``) of the lower-cased texts:
    n-grams of each word padded with one space on each side; a word shorter than ``n`` (with its
    padding) yields no n-grams, one exactly ``n`` long yields itself (scikit-learn's "short word
    once" rule, since padded words have 3+ chars). ``[B, (words)] -> [B, (ngrams)]``."""
    chars = tf.strings.unicode_split(words.with_flat_values(tf.strings.join([" ", words.flat_values, " "])), "UTF-8")
    grams = [tf.strings.ngrams(chars, n, separator="") for n in range(ngram_range[0], ngram_range[1] + 1)]
    return tf.concat(grams, axis=2).merge_dims(1, 2)


def word_ngrams(lowered: tf.Tensor, ngram_range: tuple[int, int]) -> tf.RaggedTensor:
    """scikit-learn's ``analyzer="word"`` with ``token_pattern=r"(?u)\\b\\w+\\b"``: runs of word
    characters of the lower-cased texts, joined into n-grams by spaces. ``[B] -> [B, (ngrams)]``."""
    tokens = _split(tf.strings.regex_replace(lowered, _NOT_WORD, " "))
    grams = [tokens if n == 1 else tf.strings.ngrams(tokens, n, separator=" ")
             for n in range(ngram_range[0], ngram_range[1] + 1)]
    return tf.concat(grams, axis=1)


def overlap_statistics_graph(lower_q: tf.Tensor, lower_p: tf.Tensor, q_words: tf.RaggedTensor,
                             p_words: tf.RaggedTensor) -> tf.Tensor:
    """In-graph twin of :func:`~semmatch_tf.models.tfidf.linear.overlap_statistics`, from the
    lower-cased texts and their words (``_split``): ``[B, 5]``."""
    q_words, p_words = q_words.to_sparse(), p_words.to_sparse()
    q_size = tf.cast(tf.sets.size(q_words), tf.float32)
    p_size = tf.cast(tf.sets.size(p_words), tf.float32)
    shared = tf.cast(tf.sets.size(tf.sets.intersection(q_words, p_words)), tf.float32)
    literal = tf.strings.regex_replace(lower_q, _ASCII_PUNCTUATION, r"\\\1")

    def contains(pair):
        return tf.strings.regex_full_match(pair[1], tf.strings.join(["(?s).*", pair[0], ".*"]))

    contained = tf.map_fn(contains, tf.stack([literal, lower_p], axis=1), fn_output_signature=tf.bool)
    return tf.stack([shared / tf.maximum(q_size, 1.0), shared / tf.maximum(p_size, 1.0),
                     tf.cast(contained, tf.float32), tf.math.log1p(q_size), tf.math.log1p(p_size)], axis=1)


class _Entries:
    """One side's TF-IDF vectors as sorted sparse entries: ``keys = row * V + id`` (int64), rows,
    ids and l2-normalised values, as scikit-learn's ``sublinear_tf`` TF-IDF computes them."""

    def __init__(self, ngrams: tf.RaggedTensor, table, idf: tf.Tensor, size: int, batch: tf.Tensor) -> None:
        ids = table.lookup(ngrams.flat_values)
        known = ids >= 0
        keys = tf.boolean_mask(ngrams.value_rowids() * size + ids, known)
        unique, _, counts = tf.unique_with_counts(keys)
        order = tf.argsort(unique)
        self.keys = tf.gather(unique, order)
        self.rows, self.ids = self.keys // size, self.keys % size
        weights = (1.0 + tf.math.log(tf.cast(tf.gather(counts, order), tf.float32))) * tf.gather(idf, self.ids)
        norms = tf.sqrt(tf.math.unsorted_segment_sum(tf.square(weights), self.rows, batch))
        self.values = weights / tf.gather(norms, self.rows)
        self.batch = batch

    def dot(self, coefficients: tf.Tensor) -> tf.Tensor:
        """``x @ W`` for this side's vectors and ``W [V, K]``: ``[B, K]``."""
        return tf.math.unsorted_segment_sum(self.values[:, None] * tf.gather(coefficients, self.ids), self.rows,
                                            self.batch)

    def overlap(self, other: "_Entries", coefficients: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The element-wise product with ``other``'s vectors (same rows): ``(q*p) @ W [B, K]`` and
        the cosine ``sum(q*p) [B, 1]``."""
        sentinel = tf.constant([np.iinfo(np.int64).max], tf.int64)
        other_keys = tf.concat([other.keys, sentinel], axis=0)
        other_values = tf.concat([other.values, [0.0]], axis=0)
        at = tf.searchsorted(other_keys, self.keys)
        matched = tf.cast(tf.equal(tf.gather(other_keys, at), self.keys), tf.float32)
        product = self.values * tf.gather(other_values, at) * matched
        weighted = tf.math.unsorted_segment_sum(product[:, None] * tf.gather(coefficients, self.ids), self.rows,
                                                self.batch)
        return weighted, tf.math.unsorted_segment_sum(product, self.rows, self.batch)[:, None]


@keras.saving.register_keras_serializable(package="semmatch_tf")
class TfidfPairLinear(keras.layers.Layer):
    """``{"query", "product"}`` strings -> a fitted linear model over the TF-IDF pair features.

    Args:
        char_vocabulary, word_vocabulary: the fitted vectorizers' n-grams, in column order.
        char_ngram_range, word_ngram_range: their n-gram ranges.
        output: ``"grade"`` (a ridge: ``[B, 1]`` unit grade ``(score - low) / (high - low)``),
            ``"sigmoid"`` (a binary logistic regression: ``[B, num_classes]`` probabilities) or
            ``"softmax"`` (a multinomial one).
        grade_range: ``(low, high)`` for ``"grade"``.
        classes: the class index of each linear output column (``"sigmoid"``: the two classes).
        num_classes: width of the probability output.

    The idf weights, coefficients ``[F, K]`` (column order of ``PairTfidfFeatures``) and intercept
    ``[K]`` are non-trainable weights, set by :meth:`from_fitted`.

    Examples:
        >>> from semmatch_tf.models.tfidf.linear import StrongPairRidge
        >>> ridge = StrongPairRidge(alphas=(1.0,)).fit(["drill", "paint"], ["cordless drill", "white paint"], [3.0, 1.0])
        >>> layer = TfidfPairLinear.from_fitted(ridge, grade_range=(1.0, 3.0))
        >>> unit = layer({"query": tf.constant(["drill"]), "product": tf.constant(["cordless drill"])})
        >>> bool(abs(float(unit[0, 0]) * 2 + 1 - ridge.predict(["drill"], ["cordless drill"])[0]) < 1e-4)
        True
    """

    def __init__(self, char_vocabulary, word_vocabulary, *, char_ngram_range=(1, 4), word_ngram_range=(1, 2),
                 output: str = "grade", grade_range=(0.0, 1.0), classes=(0,), num_classes: int = 1,
                 **kwargs) -> None:
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        if output not in ("grade", "sigmoid", "softmax"):
            raise ValueError(f"output must be 'grade', 'sigmoid' or 'softmax', got {output!r}")
        self.char_vocabulary, self.word_vocabulary = list(char_vocabulary), list(word_vocabulary)
        self.char_ngram_range, self.word_ngram_range = tuple(char_ngram_range), tuple(word_ngram_range)
        self.output_kind, self.grade_range = output, tuple(float(g) for g in grade_range)
        self.classes, self.num_classes = [int(c) for c in classes], int(num_classes)
        self.output_columns = 2 if output == "sigmoid" else len(self.classes)
        width = 1 if output == "sigmoid" else len(self.classes)
        size_c, size_w = len(self.char_vocabulary), len(self.word_vocabulary)
        self.feature_count = 3 * size_c + 1 + 3 * size_w + 1 + 5
        self.char_table = self._table(self.char_vocabulary)
        self.word_table = self._table(self.word_vocabulary)
        self.char_idf = self.add_weight(shape=(size_c,), initializer="ones", trainable=False, name="char_idf")
        self.word_idf = self.add_weight(shape=(size_w,), initializer="ones", trainable=False, name="word_idf")
        self.coefficients = self.add_weight(shape=(self.feature_count, width), initializer="zeros",
                                            trainable=False, name="coefficients")
        self.intercept = self.add_weight(shape=(width,), initializer="zeros", trainable=False, name="intercept")
        placement = np.zeros((self.output_columns, max(self.num_classes, 1)), np.float32)
        for column, index in enumerate(self.classes if output != "grade" else [0]):
            placement[column, index] = 1.0
        self.placement = tf.constant(placement)

    @staticmethod
    def _table(vocabulary: list[str]):
        keys = tf.constant(vocabulary if vocabulary else [""], tf.string)
        values = tf.range(len(vocabulary), dtype=tf.int64) if vocabulary else tf.constant([-1], tf.int64)
        return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), default_value=-1)

    @classmethod
    def from_fitted(cls, model, *, grade_range=(0.0, 1.0), num_classes: int | None = None,
                    **kwargs) -> "TfidfPairLinear":
        """The layer of a fitted :class:`StrongPairRidge` (``grade_range``: its grades' scale) or
        :class:`StrongPairLogReg` (``num_classes``: the label scheme's, default its largest class + 1)."""
        vectorizers = model.features.vectorizers
        vocabularies = [sorted(v.vocabulary_, key=v.vocabulary_.get) for v in vectorizers]
        estimator = model.model
        coefficients = np.atleast_2d(np.asarray(estimator.coef_, np.float64)).T  # [F or columns, K]
        intercept = np.atleast_1d(np.asarray(estimator.intercept_, np.float64))
        if getattr(model, "columns", None) is not None:  # a logistic regression on a column subset
            full = np.zeros((model.features.width(), coefficients.shape[1]))
            full[model.columns] = coefficients
            coefficients = full
        if hasattr(estimator, "classes_") and hasattr(estimator, "predict_proba"):
            classes = [int(c) for c in estimator.classes_]
            output = "sigmoid" if len(classes) == 2 else "softmax"
            settings = dict(output=output, classes=classes, num_classes=num_classes or max(classes) + 1)
        else:
            settings = dict(output="grade", grade_range=grade_range)
        layer = cls(vocabularies[0], vocabularies[1], char_ngram_range=vectorizers[0].ngram_range,
                    word_ngram_range=vectorizers[1].ngram_range, **settings, **kwargs)
        layer.char_idf.assign(vectorizers[0].idf_.astype(np.float32))
        layer.word_idf.assign(vectorizers[1].idf_.astype(np.float32))
        layer.coefficients.assign(coefficients.astype(np.float32))
        layer.intercept.assign(intercept.astype(np.float32))
        return layer

    def build(self, input_shape=None) -> None:
        self.built = True

    def linear(self, queries: tf.Tensor, products: tf.Tensor) -> tf.Tensor:
        """The fitted model's decision function ``features @ coefficients + intercept``: ``[B, K]``."""
        return self._decision(queries, products)[0]

    def _decision(self, queries: tf.Tensor, products: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(decision function [B, K], char and word TF-IDF cosines [B, 2])``: the cosines are
        features of the linear model, so one pass gives both."""
        lowered = [_lower(queries), _lower(products)]  # each side lower-cased and split once
        words = [_split(texts) for texts in lowered]
        batch = tf.shape(lowered[0], out_type=tf.int64)[0]
        total = tf.zeros([batch, tf.shape(self.coefficients)[1]]) + self.intercept
        offset, cosines = 0, []
        for ngrams, table, idf, size in (
                ([char_wb_ngrams(w, self.char_ngram_range) for w in words], self.char_table, self.char_idf,
                 len(self.char_vocabulary)),
                ([word_ngrams(t, self.word_ngram_range) for t in lowered], self.word_table, self.word_idf,
                 len(self.word_vocabulary))):
            q, p = (_Entries(side, table, idf, max(size, 1), batch) for side in ngrams)
            block = self.coefficients[offset:offset + 3 * size + 1]
            overlap, cosine = q.overlap(p, block[2 * size:3 * size])
            total += q.dot(block[:size]) + p.dot(block[size:2 * size]) + overlap + cosine * block[3 * size]
            offset += 3 * size + 1
            cosines.append(cosine)
        total += overlap_statistics_graph(*lowered, *words) @ self.coefficients[offset:]
        return total, tf.concat(cosines, axis=1)

    def with_cosines(self, inputs: dict) -> tuple[tf.Tensor, tf.Tensor]:
        """``(the layer's output, [B, 2] char and word TF-IDF cosines of query and product)``."""
        scores, cosines = self._decision(inputs["query"], inputs["product"])
        return self._output(scores), cosines

    def call(self, inputs: dict) -> tf.Tensor:
        return self._output(self.linear(inputs["query"], inputs["product"]))

    def _output(self, scores: tf.Tensor) -> tf.Tensor:
        """The decision function as the layer's output: a unit grade or class probabilities."""
        if self.output_kind == "grade":
            low, high = self.grade_range
            return (scores - low) / (high - low)
        if self.output_kind == "sigmoid":
            positive = tf.sigmoid(scores)
            return tf.concat([1.0 - positive, positive], axis=1) @ self.placement
        return tf.nn.softmax(scores, axis=1) @ self.placement

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(char_vocabulary=self.char_vocabulary, word_vocabulary=self.word_vocabulary,
                      char_ngram_range=list(self.char_ngram_range), word_ngram_range=list(self.word_ngram_range),
                      output=self.output_kind, grade_range=list(self.grade_range), classes=self.classes,
                      num_classes=self.num_classes)
        return config


@keras.saving.register_keras_serializable(package="semmatch_tf")
class RawPairInputs(keras.layers.Layer):
    """The preprocessor of :class:`TfidfPairLinear`: raw strings pass through (the model analyses
    its own text); ``facts()`` says what the model is, for an export's metadata.

    Args:
        facts: what :meth:`facts` returns (JSON-serialisable).
    """

    def __init__(self, facts: dict | None = None, **kwargs) -> None:
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        self._facts = dict(facts or {})

    @property
    def vocabulary(self) -> None:
        return None  # n-gram tables live in the model, not a WordPiece vocabulary

    def facts(self) -> dict:
        return dict(self._facts)

    def build(self, input_shape=None) -> None:
        self.built = True

    def call(self, inputs: dict) -> dict:
        return {"query": inputs["query"], "product": inputs["product"]}

    def get_config(self) -> dict:
        return {**super().get_config(), "facts": self._facts}
