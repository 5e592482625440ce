"""The product type of a title and of a query, in TF ops (what a shopper names last: "drill", "deck stain").

A title's type is the last one or two words of its head (the text before ", ", "(", " with ",
" for ", " - ", " w/ " or an " in " that follows no digit), after trailing model codes, units,
colours and stop words are dropped: the last two words when that phrase is a known type, else the
last word when it is. A query's type is its known type phrase nearest the end (two words before
one at the same end; plural "s"/"es" dropped when only the singular is known). Known types are the
title-end phrases of at least ``min_titles`` fitting titles (:func:`learn_types`). The Python
:class:`semmatch_tf.query.AttributeExtractor` does the same with a brand gazetteer beside it; this
is its graph twin for the exported boosted stack, without brands.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import tensorflow as tf

from semmatch_tf.query.attributes import COLOUR_KEYS, MATERIAL_KEYS, STOPWORDS
from semmatch_tf.text.units import UNITS, normalize_units_graph

_CUT = r"\s*(?:,|\(| with | for | - | w/ ).*$"
_IN_CUT = r"([^0-9]) in .*$"  # " in " after a letter starts a clause; after a number it is a unit
_TRAILING_CODE = r"(?:\s+[\p{L}]*[0-9][\p{L}0-9-]*)+$"
_NOT_WORD = r"[^\p{L}\p{N}]+"
#: Single words that never name a type on their own.
NOT_TYPES = tuple(sorted({*UNITS, *STOPWORDS, *(c for c in COLOUR_KEYS if " " not in c)}))
#: Phrases that are never a query's type (units, colours, materials).
NOT_QUERY_TYPES = tuple(sorted({*UNITS, *COLOUR_KEYS, *MATERIAL_KEYS}))


def set_table(words: Sequence[str]) -> tf.lookup.StaticHashTable:
    """A membership table: 1 for ``words``, 0 for anything else. A layer creates its tables once
    and passes them in (a table made while tracing would not be saved with the model)."""
    keys = tf.constant(list(words) or [""], tf.string)
    values = tf.fill([tf.size(keys)], 1 if len(words) else 0)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), 0)


def head_words(normalised: tf.Tensor) -> tf.RaggedTensor:
    """``[B] -> [B, (words)]``: the alphabetic words of each text's head. Like the functions below
    that take ``normalised``, it reads texts already through ``normalize_units_graph`` (a caller
    that also needs the texts' other words normalises once)."""
    text = tf.strings.join([" ", normalised])
    head = tf.strings.regex_replace(tf.strings.regex_replace(text, _CUT, ""), _IN_CUT, r"\1")
    head = tf.where(tf.strings.strip(head) == "", text, head)
    head = tf.strings.regex_replace(head, _TRAILING_CODE, "")
    words = tf.strings.split(tf.strings.strip(tf.strings.regex_replace(head, _NOT_WORD, " ")))
    return tf.ragged.boolean_mask(words, tf.strings.regex_full_match(words, r"\p{L}+"))


def _last(words: tf.RaggedTensor, back: int) -> tf.Tensor:
    """The word ``back`` (1 or more) places from the end of each row ("" when the row is shorter)."""
    dense = tf.concat([tf.fill([words.nrows(), back], ""), words.to_tensor("")], axis=1)
    return tf.gather(dense, words.row_lengths(), batch_dims=1)


def title_candidates(normalised: tf.Tensor, not_types: tf.lookup.StaticHashTable) -> tuple[tf.Tensor, tf.Tensor]:
    """``([B] last word, [B] last two words)`` of each title's head, "" where there are none
    (``not_types``: :func:`set_table` of :data:`NOT_TYPES`)."""
    words = head_words(normalised)
    keep = (tf.strings.length(words, unit="UTF8_CHAR") > 1) & (not_types.lookup(words) == 0)
    words = tf.ragged.boolean_mask(words, keep)
    last, before = _last(words, 1), _last(words, 2)
    pair = tf.where((last != "") & (before != ""), tf.strings.join([before, last], " "), "")
    return last, pair


def learn_types(titles: Sequence[str], min_titles: int = 3, batch_size: int = 4096) -> list[str]:
    """The title-end phrases (last word, last two words) of at least ``min_titles`` titles."""
    counts: Counter = Counter()
    not_types = set_table(NOT_TYPES)
    for start in range(0, len(titles), batch_size):
        batch = normalize_units_graph(tf.constant(list(titles[start:start + batch_size]), tf.string))
        for phrases in title_candidates(batch, not_types):
            counts.update(p.decode("utf-8") for p in phrases.numpy() if p)
    return sorted(p for p, c in counts.items() if c >= min_titles)


def title_type(normalised: tf.Tensor, types: tf.lookup.StaticHashTable, not_types: tf.lookup.StaticHashTable
               ) -> tf.Tensor:
    """``[B]`` each title's type ("" when none is known)."""
    last, pair = title_candidates(normalised, not_types)
    return tf.where(types.lookup(pair) > 0, pair, tf.where(types.lookup(last) > 0, last, ""))


def _known(phrases: tf.Tensor, types: tf.lookup.StaticHashTable) -> tf.Tensor:
    """``phrases`` or their singular when that is a known type, else ""."""
    minus_s = tf.strings.regex_replace(phrases, "s$", "")
    minus_es = tf.strings.regex_replace(phrases, "es$", "")
    return tf.where(types.lookup(phrases) > 0, phrases,
                    tf.where((minus_s != phrases) & (types.lookup(minus_s) > 0), minus_s,
                             tf.where((minus_es != phrases) & (types.lookup(minus_es) > 0), minus_es, "")))


def query_type(normalised: tf.Tensor, types: tf.lookup.StaticHashTable, excluded: tf.lookup.StaticHashTable
               ) -> tf.Tensor:
    """``[B]`` each query's type: its known type phrase nearest the end ("" when none;
    ``excluded``: :func:`set_table` of :data:`NOT_QUERY_TYPES`)."""
    words = head_words(normalised).to_tensor("")
    rows = tf.shape(words)[0]
    words = tf.concat([words, tf.fill([rows, 1], "")], axis=1)  # at least one column
    previous = tf.concat([tf.fill([rows, 1], ""), words[:, :-1]], axis=1)
    pairs = tf.where((previous != "") & (words != ""), tf.strings.join([previous, words], " "), "")
    found = []
    for candidates in (words, pairs):  # one word, then the two words ending at each position
        known = _known(candidates, types)
        found.append(tf.where((known != "") & (excluded.lookup(known) == 0), known, ""))
    # The later end wins; at one end, two words win over one. No hit: an empty candidate is chosen.
    found = tf.reshape(tf.stack(found, axis=2), [rows, -1])  # [B, 2L]: position-major
    rank = tf.where(found != "", tf.range(tf.shape(found)[1])[None, :], -1)
    return tf.gather(found, tf.argmax(rank, axis=1, output_type=tf.int32), batch_dims=1)


def type_agreement(query_types: tf.Tensor, title_types: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``(agree, contradict)`` float ``[B]``: both name a type and it is the same (or ends in the
    same word), or both name one and they differ; both 0 when either is silent."""
    both = (query_types != "") & (title_types != "")
    last_q = tf.strings.regex_replace(query_types, r"^.* ", "")
    last_t = tf.strings.regex_replace(title_types, r"^.* ", "")
    agree = both & ((query_types == title_types) | (last_q == last_t))
    return tf.cast(agree, tf.float32), tf.cast(both & ~agree, tf.float32)
