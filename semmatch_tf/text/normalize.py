"""Text normalisation and word splitting as TensorFlow graph ops (tensorflow-text).

Everything here runs inside a ``tf.function``: in ``tf.data`` during training and inside an exported
SavedModel at serving time, so training and serving see byte-identical tokens.

Why the care with accents: the usual recipe (NFD, then drop every ``\\p{Mn}`` mark) also drops the
Japanese voicing marks (dakuten), turning ガ into カ. We drop only the Latin *combining diacritical
marks* block (U+0300-U+036F) and recompose with NFC, so "café" becomes "cafe" and ガ stays ガ.

Why CJK is split per character: Chinese and Japanese have no spaces; BERT's basic tokenizer splits
Han ideographs per character but keeps katakana and hiragana runs whole ("プラモデル" is one
"word"), which WordPiece then maps to [UNK]. We split Han, Hiragana, Katakana (plus the prolonged
sound mark ー) and Hangul per character, and Latin scripts by whitespace and punctuation.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text

#: Scripts written without spaces: each character becomes its own word.
CJK_CHARACTER = r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\x{30FC}\x{3005}]"
#: Latin combining diacritics only (NOT all \p{Mn}: that would strip Japanese dakuten).
LATIN_COMBINING_MARKS = r"[\x{0300}-\x{036F}]"
#: Split on whitespace; keep each punctuation or symbol character as a word of its own.
SPLIT_PATTERN = r"\s+|[\p{P}\p{S}]"
KEEP_PATTERN = r"[\p{P}\p{S}]"
#: Control and format characters (zero-width spaces, BOMs) are dropped before splitting.
CONTROL_CHARACTERS = r"[\p{Cc}\p{Cf}]"


def normalize(strings: tf.Tensor, *, lowercase: bool = True, strip_accents: bool = True) -> tf.Tensor:
    """NFKC, optional case folding and accent stripping, control characters turned to spaces.

    NFKC folds full-width Latin ("ＡＢＣ"), half-width katakana and compatibility forms such as
    "①" so that text typed on different keyboards meets the same vocabulary entries.
    """
    strings = tf_text.normalize_utf8(strings, "NFKC")
    strings = tf.strings.regex_replace(strings, CONTROL_CHARACTERS, " ")
    if lowercase:
        strings = tf_text.case_fold_utf8(strings)
    if strip_accents:
        strings = tf_text.normalize_utf8(strings, "NFD")
        strings = tf.strings.regex_replace(strings, LATIN_COMBINING_MARKS, "")
        strings = tf_text.normalize_utf8(strings, "NFC")
    return strings


def split_words(strings: tf.Tensor, *, lowercase: bool = True, strip_accents: bool = True) -> tf.RaggedTensor:
    """Normalise, then split into words: CJK per character, others on spaces and punctuation.

    Returns a ``tf.RaggedTensor`` of shape ``[batch, (words)]`` for a 1-D input.
    """
    strings = normalize(strings, lowercase=lowercase, strip_accents=strip_accents)
    strings = tf.strings.regex_replace(strings, f"({CJK_CHARACTER})", r" \1 ")
    return tf_text.regex_split(strings, SPLIT_PATTERN, KEEP_PATTERN)
