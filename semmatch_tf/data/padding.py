"""Trimming the dead right padding of packed (BERT-style) inputs: a leaf module of ``data``.

It lives here, below ``models``, because the tf.data pipeline (``data.pipeline``) trims its
batches with it; the BERT preprocessor, the bi-encoder towers, the run directory's matcher and the
exporter use the same function (``semmatch_tf.models.bert`` re-exports it).
"""

from __future__ import annotations

import tensorflow as tf


def trim_packed_padding(features: dict, multiple: int = 8) -> dict:
    """Slice packed inputs to the batch's longest sequence, rounded up to ``multiple`` tokens.

    Right padding makes every column past the longest row pure padding, so dropping it changes no
    output, while attention and feed-forward cost fall with the length (most product pairs are far
    shorter than ``sequence_length``). Rounding keeps the number of distinct shapes small. Used by
    the tf.data pipeline and by exported cross-encoders; inputs without a ``padding_mask`` pass.
    """
    if not isinstance(features, dict) or "padding_mask" not in features:
        return features
    longest = tf.reduce_max(tf.reduce_sum(tf.cast(features["padding_mask"], tf.int32), axis=1))
    width = tf.minimum(tf.shape(features["token_ids"])[1], (longest + multiple - 1) // multiple * multiple)
    return {key: value[:, :width] for key, value in features.items()}
