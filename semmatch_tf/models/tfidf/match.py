"""How a title matches a query, computed inside the TF graph from the raw strings.

A bag of n-grams into a linear model (the strongest cheap baseline) cannot say *how* a title covers
a query: whether every query word is there, whether the last word (usually the product type) is,
whether the numbers agree, how rare the missing word is. The Home Depot winners fed such features
to gradient-boosted trees, and so does :func:`semmatch_tf.ensemble.fit_boosted_member`; this layer
computes them with string ops and one lookup table, so the trees and the features ship in one
SavedModel that TF Serving runs on raw strings.

Words are the runs of letters and digits of the lower-cased texts (the word TF-IDF's tokens). The
columns (:data:`MATCH_FEATURES`): the query's and title's word counts and the query's characters;
the share of query words found in the title as words, as crude stems (the longest of ``ings ing ies
es ed s ly`` cut when three letters stay), as 4-letter prefixes, within one typo of a title word
(one substitution, insertion, deletion or swap of neighbours; words of 4+ letters: "lumder" is
"lumber") and as parts of compounds ("deck" in "deckover"); the idf-weighted share of stems found and the idf of the rarest word missing; the
share of query bigrams in the title and whether the whole query is a phrase of the title; whether
the query's last and first words are there; where the first match is; how many numbers the query
has, the share found, and whether the numbers contradict; BM25 and BM25 over the query's total idf;
the query's mean idf and share of words no training title has; whether the query's and the title's
product types agree or contradict (:mod:`.product_type`). Idf (BM25's), the average title length
and the known product types come from the titles the layer was fitted on
(:meth:`MatchFeatures.from_titles`).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from semmatch_tf.models.tfidf.layer import _NOT_WORD, _split
from semmatch_tf.models.tfidf.product_type import (NOT_QUERY_TYPES, NOT_TYPES, learn_types, query_type, set_table,
                                                   title_type, type_agreement)
from semmatch_tf.text.normalize import CJK_CHARACTER
from semmatch_tf.text.units import normalize_units_graph

MATCH_FEATURES = ("query_words", "title_words", "query_chars", "word_share", "stem_share", "prefix_share",
                  "fuzzy_share", "compound_share", "idf_share", "max_missing_idf", "bigram_share", "phrase_match",
                  "last_word_in_title", "first_word_in_title", "first_match_position", "query_numbers",
                  "number_share", "number_contradict", "bm25", "bm25_share", "query_mean_idf", "query_unseen_share",
                  "type_agree", "type_contradict")
_STEM = r"^(.{3,}?)(?:ings|ing|ies|es|ed|s|ly)$"


def match_words(texts: tf.Tensor) -> tf.RaggedTensor:
    """``[B] -> [B, (words)]``: runs of letters and digits of the normalised texts (lower-cased,
    accents stripped, units normalised: "5 Gal." and "5-gallon" are both "5 gal"); each CJK
    character is a word of its own, so Chinese and Japanese get coverage features too."""
    return _words_of(normalize_units_graph(tf.reshape(texts, [-1])))


def _words_of(normalised: tf.Tensor) -> tf.RaggedTensor:
    """:func:`match_words` of texts already through ``normalize_units_graph``."""
    text = tf.strings.regex_replace(normalised, f"({CJK_CHARACTER})", r" \1 ")
    return _split(tf.strings.regex_replace(text, _NOT_WORD, " "))


def _padded(words: tf.RaggedTensor) -> tf.Tensor:
    """``[B, W + 1]`` words padded with "" (one column more, so that position 0 always exists)."""
    dense = words.to_tensor("")
    return tf.concat([dense, tf.fill([tf.shape(dense)[0], 1], "")], axis=1)


def _share(flags: tf.Tensor, valid: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(flags & valid, tf.float32), axis=1) / tf.maximum(count, 1.0)


def _any_other(left: tf.Tensor, right: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """``[B, M]``: does ``left[b, i]`` equal some valid ``right[b, j]``."""
    return tf.reduce_any(tf.equal(left[:, :, None], right[:, None, :]) & valid, axis=2)


def _code_points(words: tf.Tensor, width: tf.Tensor, pad: int) -> tf.Tensor:
    """``[B, W] -> [B, W, width]`` Unicode code points, padded with ``pad``."""
    points = tf.strings.unicode_decode(words, "UTF-8").to_tensor(pad)
    return tf.pad(points, [[0, 0], [0, 0], [0, width - tf.shape(points)[2]]], constant_values=pad)


def _one_deletion(short: tf.Tensor, long: tf.Tensor, short_length: tf.Tensor) -> tf.Tensor:
    """``[B, M, N]``: whether deleting one character of ``long`` gives ``short`` (``[B, M, N, L]``
    code points, the last column padding): some cut ``p <= len(short)`` has ``short[:p] ==
    long[:p]`` and ``short[p:] == long[p + 1:]``."""
    position = tf.range(tf.shape(short)[3])
    before = tf.math.cumprod(tf.cast(short == long, tf.int32), axis=3, exclusive=True) > 0
    shifted = tf.concat([long[..., 1:], long[..., -1:]], axis=3)
    after = (short == shifted) | (position >= short_length[..., None])
    after = tf.math.cumprod(tf.cast(after, tf.int32), axis=3, reverse=True) > 0
    return tf.reduce_any(before & after & (position <= short_length[..., None]), axis=3)


def one_edit(q: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
    """``[B, M] x [B, N] -> [B, M, N]``: the words are equal, or both have 4+ letters and differ by
    one substitution, insertion, deletion or swap of neighbours (a typo)."""
    q_length = tf.strings.length(q, unit="UTF8_CHAR")[:, :, None]
    t_length = tf.strings.length(t, unit="UTF8_CHAR")[:, None, :]
    width = tf.maximum(tf.reduce_max(q_length), tf.reduce_max(t_length)) + 1
    shape = tf.concat([tf.shape(q)[:2], tf.shape(t)[1:2], [width]], axis=0)
    a = tf.broadcast_to(_code_points(q, width, -1)[:, :, None, :], shape)
    c = tf.broadcast_to(_code_points(t, width, -2)[:, None, :, :], shape)
    lengths = tf.broadcast_to(q_length, shape[:3]), tf.broadcast_to(t_length, shape[:3])
    real = tf.range(width) < lengths[0][..., None]
    differ = (a != c) & real
    count = tf.reduce_sum(tf.cast(differ, tf.int32), axis=3)
    next_a, next_c = (tf.concat([x[..., 1:], x[..., -1:]], axis=3) for x in (a, c))
    next_differ = tf.concat([differ[..., 1:], tf.zeros_like(differ[..., :1])], axis=3)
    swapped = tf.reduce_any(differ & next_differ & (a == next_c) & (next_a == c), axis=3)
    same = tf.equal(*lengths)
    edit = (same & ((count == 1) | ((count == 2) & swapped))) \
        | ((lengths[0] == lengths[1] + 1) & _one_deletion(c, a, lengths[1])) \
        | ((lengths[1] == lengths[0] + 1) & _one_deletion(a, c, lengths[0]))
    return (same & (count == 0)) | (edit & (tf.minimum(*lengths) >= 4))


def _one_edit_by_row(q: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
    """:func:`one_edit` a pair at a time: its ``[M, N, characters]`` tensors stay small where a whole
    batch's would not (1,024 Chinese titles of 100 characters against 20-word queries)."""
    return tf.map_fn(lambda pair: one_edit(pair[0][None], pair[1][None])[0], (q, t),
                     fn_output_signature=tf.TensorSpec([None, None], tf.bool))


@keras.saving.register_keras_serializable(package="semmatch_tf")
class MatchFeatures(keras.layers.Layer):
    """``{"query", "product"}`` strings -> ``[B, len(MATCH_FEATURES)]`` float32 match features.

    Args:
        vocabulary: the words with an idf (from the fitting titles).
        idf: their BM25 idf ``log(1 + (N - df + 0.5) / (df + 0.5))``; ``unseen_idf`` for other words.
        unseen_idf: the idf of a word no fitting title has.
        average_length: the fitting titles' mean word count (BM25's length normalisation).
        types: the known product types (:func:`~semmatch_tf.models.tfidf.product_type.learn_types`).
        k1, b: BM25's parameters.

    Examples:
        >>> layer = MatchFeatures.from_titles(["Cordless Drill 18V", "White Paint 1 gal.", "Drill Bits Set"])
        >>> row = layer({"query": tf.constant(["cordless drills"]), "product": tf.constant(["Cordless Drill 18V"])})[0]
        >>> names = list(MATCH_FEATURES)
        >>> [float(row[names.index(n)]) for n in ("word_share", "stem_share", "last_word_in_title", "phrase_match")]
        [0.5, 1.0, 1.0, 0.0]
    """

    def __init__(self, vocabulary: Sequence[str] = (), idf: Sequence[float] = (), *, unseen_idf: float = 1.0,
                 average_length: float = 1.0, types: Sequence[str] = (), k1: float = 1.2, b: float = 0.75,
                 **kwargs) -> None:
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        if len(vocabulary) != len(idf):
            raise ValueError(f"vocabulary and idf must be aligned, got {len(vocabulary)} and {len(idf)}")
        self.vocabulary, self.idf = [str(w) for w in vocabulary], [float(v) for v in idf]
        self.unseen_idf, self.average_length = float(unseen_idf), float(average_length)
        self.k1, self.b, self.types = float(k1), float(b), [str(t) for t in types]
        self.type_table, self.not_type_table = set_table(self.types), set_table(NOT_TYPES)
        self.not_query_type_table = set_table(NOT_QUERY_TYPES)
        keys = tf.constant(self.vocabulary or [""], tf.string)
        values = tf.constant(self.idf or [self.unseen_idf], tf.float32)
        self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values),
                                               default_value=-1.0)  # -1: a word no fitting title has

    @classmethod
    def from_titles(cls, titles: Sequence[str], **kwargs) -> "MatchFeatures":
        """Fit idf, the average length and the known types on ``titles`` (duplicates count once)."""
        unique = list(dict.fromkeys(str(t) for t in titles))
        tokenised = [[w.decode("utf-8") for w in row] for row in match_words(tf.constant(unique or [""])).to_list()]
        frequency = Counter(w for row in tokenised for w in set(row))
        n = len(unique)
        vocabulary = sorted(frequency)
        idf = [math.log(1.0 + (n - frequency[w] + 0.5) / (frequency[w] + 0.5)) for w in vocabulary]
        average = float(np.mean([len(row) for row in tokenised])) if unique else 1.0
        return cls(vocabulary, idf, unseen_idf=math.log(1.0 + (n + 0.5) / 0.5), average_length=max(average, 1.0),
                   types=learn_types(unique), **kwargs)

    def build(self, input_shape=None) -> None:
        self.built = True

    def call(self, inputs: dict) -> tf.Tensor:
        normalised = [normalize_units_graph(tf.reshape(inputs[side], [-1])) for side in ("query", "product")]
        query, title = (_words_of(texts) for texts in normalised)
        q, t = (_padded(words) for words in (query, title))
        q_valid, t_valid = q != "", t != ""
        m = tf.cast(query.row_lengths(), tf.float32)
        n = tf.cast(title.row_lengths(), tf.float32)
        pairs_valid = q_valid[:, :, None] & t_valid[:, None, :]
        found = _any_other(q, t, pairs_valid)
        q_stems, t_stems = (tf.strings.regex_replace(x, _STEM, r"\1") for x in (q, t))
        stems = _any_other(q_stems, t_stems, pairs_valid)
        prefixes = self._prefix_found(q, t, pairs_valid, found)
        fuzzy = stems | tf.reduce_any(_one_edit_by_row(q, t) & pairs_valid, axis=2)
        compound = stems | self._compound(q, t, pairs_valid)
        looked_up = self.table.lookup(q)
        known = looked_up >= 0.0
        idf = tf.where(q_valid, tf.where(known, looked_up, self.unseen_idf), 0.0)
        total_idf = tf.maximum(tf.reduce_sum(idf, axis=1), 1e-6)
        idf_share = tf.reduce_sum(tf.where(stems, idf, 0.0), axis=1) / total_idf
        max_missing = tf.reduce_max(tf.where(q_valid & ~stems, idf, 0.0), axis=1)
        last = tf.gather(q_stems, tf.maximum(query.row_lengths() - 1, 0), batch_dims=1)
        last_found = tf.reduce_any(tf.equal(last[:, None], t_stems) & t_valid, axis=1) & (m > 0)
        first_found = stems[:, 0] & (m > 0)
        bm25 = self._bm25(q, t, q_valid, pairs_valid, idf, n)
        numbers = tf.strings.regex_full_match(q, "[0-9]+") & q_valid
        title_numbers = tf.strings.regex_full_match(t, "[0-9]+") & t_valid
        query_numbers = tf.reduce_sum(tf.cast(numbers, tf.float32), axis=1)
        number_share = _share(found & numbers, q_valid, query_numbers)
        contradict = (query_numbers > 0) & tf.reduce_any(title_numbers, axis=1) & (number_share == 0)
        unseen = _share(~known, q_valid, m)
        columns = [m, n, tf.cast(tf.strings.length(inputs["query"], unit="UTF8_CHAR"), tf.float32),
                   _share(found, q_valid, m), _share(stems, q_valid, m), _share(prefixes, q_valid, m),
                   _share(fuzzy, q_valid, m),                   _share(compound, q_valid, m), idf_share, max_missing, self._bigram_share(query, title, found, m),
                   self._phrase(query, title), tf.cast(last_found, tf.float32), tf.cast(first_found, tf.float32),
                   self._first_position(q, t, pairs_valid, n), query_numbers, number_share,
                   tf.cast(contradict, tf.float32), bm25, bm25 / total_idf,
                   tf.reduce_sum(idf, axis=1) / tf.maximum(m, 1.0), unseen,
                   *type_agreement(query_type(normalised[0], self.type_table, self.not_query_type_table),
                                   title_type(normalised[1], self.type_table, self.not_type_table))]
        return tf.stack([tf.reshape(c, [-1]) for c in columns], axis=1)

    @staticmethod
    def _prefix_found(q, t, pairs_valid, found):
        """4-letter prefixes shared (a query word under 4 letters must be found whole)."""
        long_q = tf.strings.length(q, unit="UTF8_CHAR") >= 4
        long_t = tf.strings.length(t, unit="UTF8_CHAR") >= 4
        q4, t4 = (tf.strings.substr(x, 0, 4, unit="UTF8_CHAR") for x in (q, t))
        shared = _any_other(q4, t4, pairs_valid & long_t[:, None, :])
        return tf.where(long_q, shared, found)

    @staticmethod
    def _compound(q, t, pairs_valid):
        """A query word of 3+ letters that starts a title word of 3+ letters, or that one starts it."""
        q_len = tf.strings.length(q, unit="UTF8_CHAR")
        t_len = tf.strings.length(t, unit="UTF8_CHAR")
        shape = tf.shape(pairs_valid)
        q_wide, t_wide = tf.broadcast_to(q[:, :, None], shape), tf.broadcast_to(t[:, None, :], shape)
        q_lens, t_lens = tf.broadcast_to(q_len[:, :, None], shape), tf.broadcast_to(t_len[:, None, :], shape)
        start = tf.zeros_like(q_lens)
        t_starts_with_q = tf.equal(tf.strings.substr(t_wide, start, q_lens, unit="UTF8_CHAR"), q_wide)
        q_starts_with_t = tf.equal(tf.strings.substr(q_wide, start, t_lens, unit="UTF8_CHAR"), t_wide)
        long_enough = (q_lens >= 3) & (t_lens >= 3) & pairs_valid
        return tf.reduce_any((t_starts_with_q | q_starts_with_t) & long_enough, axis=2)

    def _bm25(self, q, t, q_valid, pairs_valid, idf, n):
        """BM25 over the query's distinct words."""
        width = tf.shape(q)[1]
        earlier = tf.linalg.band_part(tf.ones([width, width], tf.bool), -1, 0) & ~tf.eye(width, dtype=tf.bool)
        repeated = tf.reduce_any(tf.equal(q[:, :, None], q[:, None, :]) & earlier[None] & q_valid[:, None, :], axis=2)
        counts = tf.reduce_sum(tf.cast(tf.equal(q[:, :, None], t[:, None, :]) & pairs_valid, tf.float32), axis=2)
        norm = self.k1 * (1.0 - self.b + self.b * n / self.average_length)
        terms = idf * counts * (self.k1 + 1.0) / (counts + norm[:, None])
        return tf.reduce_sum(tf.where(q_valid & ~repeated & (counts > 0), terms, 0.0), axis=1)

    @staticmethod
    def _bigram_share(query, title, found, m):
        """Share of the query's word bigrams in the title's; a one-word query: 1 if it is found."""
        q2, t2 = tf.strings.ngrams(query, 2, separator=" "), tf.strings.ngrams(title, 2, separator=" ")
        qd, td = _padded(q2), _padded(t2)
        hits = _any_other(qd, td, (qd != "")[:, :, None] & (td != "")[:, None, :])
        count = tf.cast(q2.row_lengths(), tf.float32)
        all_found = tf.cast(tf.reduce_all(found | (_padded(query) == ""), axis=1) & (m > 0), tf.float32)
        return tf.where(count > 0, _share(hits, qd != "", count), all_found)

    @staticmethod
    def _phrase(query, title):
        """Whether the query's words appear together, in order, in the title's."""
        q = tf.strings.join([" ", tf.strings.reduce_join(query, axis=1, separator=" "), " "])
        t = tf.strings.join([" ", tf.strings.reduce_join(title, axis=1, separator=" "), " "])

        def contains(pair):  # words are letters and digits only: no regex escaping needed
            return tf.strings.regex_full_match(pair[1], tf.strings.join(["(?s).*", pair[0], ".*"]))

        hit = tf.map_fn(contains, tf.stack([q, t], axis=1), fn_output_signature=tf.bool)
        return tf.cast(hit & (query.row_lengths() > 0), tf.float32)

    @staticmethod
    def _first_position(q, t, pairs_valid, n):
        """The first title position holding a query word, over the title's length (1 if none)."""
        hits = tf.reduce_any(tf.equal(q[:, :, None], t[:, None, :]) & pairs_valid, axis=1)
        positions = tf.cast(tf.range(tf.shape(t)[1]), tf.float32)[None, :]
        first = tf.reduce_min(tf.where(hits, positions, 1e9), axis=1)
        return tf.where(first < 1e9, first / tf.maximum(n, 1.0), 1.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "vocabulary": self.vocabulary, "idf": self.idf, "unseen_idf": self.unseen_idf,
                "average_length": self.average_length, "types": self.types, "k1": self.k1, "b": self.b}
