"""Each model family as a differentiable path from input embeddings to its score.

Integrated gradients need the score as a function of the token embeddings, not of token ids. Each
function here takes a loaded model and one input, and returns a :class:`Path`: the embeddings that
vary (the text's own tokens), their baseline, and a ``forward`` that replays the model's layers from
embeddings to the score, deterministically (dropout off). Special tokens (``[CLS]``, ``[SEP]``),
text prefixes (e5's ``"query: "``), positions and segments stay as they are, so the attributions
sum to what the text's tokens changed.

Baselines: the padding embedding for the cross-encoders (the BiLSTM's LSTM and BERT's attention
still run over the positions: the masks are the input's) and ``[MASK]`` for a bi-encoder's BERT
tower. A cross-encoder is not given ``[MASK]``: both texts all-``[MASK]`` are two identical texts,
which a trained matcher reads as a perfect match (the demo's MiniLM cross-encoder scores that pair
1.98 of 2, the padding pair 1.25), so every real word would look like it *lowered* the score. The BiLSTM cross-encoder's per-token input is its
embedding *and* its exact-match flag (DrQA's feature: does this piece occur on the other side);
both move to the baseline (padding, flag 0) together, so a matched word's attribution includes
what matching it was worth.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import keras
import numpy as np
import tensorflow as tf
from semmatch_tf.models.bert import find_backbone, prefix_token_count


@dataclasses.dataclass
class Side:
    """Where one text's tokens lie: input ``part``, the ``positions`` of its own tokens there, and
    their vocabulary strings."""

    part: int
    positions: np.ndarray
    tokens: list[str]


@dataclasses.dataclass
class Path:
    """The integrand of one explanation: ``forward(embeddings) -> scores`` plus both ends."""

    inputs: list[np.ndarray]
    baselines: list[np.ndarray]
    forward: Callable[[list[tf.Tensor]], tf.Tensor]
    sides: dict[str, Side]


# -- shared pieces --------------------------------------------------------------------------------
def _vocabulary(preprocessor) -> list[str]:
    return list(preprocessor.vocabulary)


def _grade(outputs: tf.Tensor, head: str, labels) -> tf.Tensor:
    """The ranking score from head outputs, as ``predicted_grades`` computes it, in TensorFlow."""
    outputs = tf.cast(outputs, tf.float32)
    if head == "classification":
        return tf.linalg.matvec(outputs, tf.constant(labels.grades, tf.float32))
    low, high = labels.grade_range
    return outputs[:, 0] * (high - low) + low


def _tile(value: np.ndarray, batch: tf.Tensor) -> tf.Tensor:
    value = tf.constant(value)
    return tf.tile(value[None], tf.concat([[batch], tf.ones([tf.rank(value)], tf.int32)], 0))


def _varying_baseline(embeddings: np.ndarray, positions: np.ndarray, replacement: np.ndarray) -> np.ndarray:
    baseline = embeddings.copy()
    baseline[positions] = replacement
    return baseline


# -- BiLSTM ---------------------------------------------------------------------------------------
def _bilstm_states(encoder, vectors: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    outputs = encoder.bilstm(vectors, mask=mask, training=False)
    return encoder.pool(outputs, mask=mask) if encoder.pool is not None else outputs


def _bilstm_side(ids: np.ndarray, vocabulary: list[str]) -> np.ndarray:
    """Positions of a WordPiece row's own tokens: not padding, not the ``[CLS]`` start token."""
    return np.flatnonzero((ids != 0) & (np.asarray([vocabulary[i] != "[CLS]" for i in ids])))


def bilstm_cross_encoder_path(matcher, query: str, product: str) -> Path:
    """The BiLSTM matcher (``semmatch_tf.models.BiLSTMMatcher``) of a loaded run."""
    model, vocabulary = matcher.model, _vocabulary(matcher.preprocessor)
    encoder = model.get_layer("encoder")
    ids = matcher.preprocessor({"query": tf.constant([query]), "product": tf.constant([product])})
    q_ids, p_ids = ids["query"].numpy()[0], ids["product"].numpy()[0]
    q_ids, p_ids = q_ids[: max(1, int((q_ids != 0).sum()))], p_ids[: max(1, int((p_ids != 0).sum()))]
    flags_layer = next((layer for layer in model.layers if layer.name == "exact_match"), None)
    pad = encoder.embedding(tf.constant([0])).numpy()[0]
    parts = []
    for row in (q_ids, p_ids):
        parts.append(encoder.embedding(tf.constant(row[None])).numpy()[0].astype(np.float32))
    if flags_layer is not None:
        flags = flags_layer(tf.constant(q_ids[None]), tf.constant(p_ids[None]))
        parts = [np.concatenate([p, f.numpy()[0]], axis=-1) for p, f in zip(parts, flags)]
        pad = np.concatenate([pad, [0.0]])
    masks = [row != 0 for row in (q_ids, p_ids)]
    positions = [_bilstm_side(row, vocabulary) for row in (q_ids, p_ids)]
    interaction, hidden = model.get_layer("interaction"), model.get_layer("hidden")
    head_layer = next(layer for layer in model.layers if layer.name in ("probabilities", "grade"))
    # A wide-and-deep head also reads the pair's match features: held fixed, the tokens share the rest.
    wide = (model.get_layer("match_features_norm")(ids["match_features"], training=False)
            if "match_features" in ids else None)

    def forward(xs):
        batch = tf.shape(xs[0])[0]
        q, p = (_bilstm_states(encoder, x, _tile(m, batch)) for x, m in zip(xs, masks))
        features = interaction(q, p)
        if wide is not None:
            features = tf.concat([features, tf.tile(tf.cast(wide, features.dtype), [batch, 1])], axis=1)
        return _grade(head_layer(hidden(features)), matcher.head, matcher.labels)

    return Path(parts, [_varying_baseline(x, pos, pad) for x, pos in zip(parts, positions)], forward,
                {"query": Side(0, positions[0], [vocabulary[i] for i in q_ids[positions[0]]]),
                 "product": Side(1, positions[1], [vocabulary[i] for i in p_ids[positions[1]]])})


def _bilstm_tower_text(preprocessor, tower, text: str):
    """``(embeddings, baseline, tokens, positions, forward-to-vector)`` of a BiLSTM tower."""
    vocabulary = _vocabulary(preprocessor)
    encoder = tower.get_layer("encoder")
    ids = preprocessor(tf.constant([text]))
    ids = (ids.to_tensor() if isinstance(ids, tf.RaggedTensor) else ids).numpy()[0]
    ids = ids[: max(1, int((ids != 0).sum()))]
    embeddings = encoder.embedding(tf.constant(ids[None])).numpy()[0].astype(np.float32)
    positions = _bilstm_side(ids, vocabulary)
    pad = encoder.embedding(tf.constant([0])).numpy()[0]
    mask = ids != 0
    after = [layer for layer in tower.layers if layer.name in ("projection", "l2_normalise")]

    def vectors(x):
        out = _bilstm_states(encoder, x, _tile(mask, tf.shape(x)[0]))
        for layer in after:
            out = layer(out)
        return tf.cast(out, tf.float32)

    return embeddings, _varying_baseline(embeddings, positions, pad), [vocabulary[i] for i in ids[positions]], \
        positions, vectors


# -- BERT -----------------------------------------------------------------------------------------
def _bert_states(backbone, x: tf.Tensor, segment_ids: np.ndarray, padding_mask: np.ndarray) -> tf.Tensor:
    """``BertBackbone``'s forward pass from token embeddings (its own layers, dropout off)."""
    batch = tf.shape(x)[0]
    positions = backbone.position_embedding(x)
    segments = backbone.segment_embedding(_tile(segment_ids, batch))
    hidden = backbone.embeddings_layer_norm(backbone.embeddings_add((x, positions, segments)))
    mask = _tile(padding_mask, batch)
    for layer in backbone.transformer_layers:
        hidden = layer(hidden, padding_mask=mask, training=False)
    return hidden


def _bert_features(preprocessor, inputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    features = preprocessor(inputs)
    length = max(1, int(np.asarray(features["padding_mask"])[0].sum()))
    return tuple(np.asarray(features[key])[0][:length] for key in ("token_ids", "segment_ids", "padding_mask"))


def _text_region(ids: np.ndarray, start: int, separator: int, prefix_tokens: int) -> tuple[np.ndarray, int]:
    """Positions of a text's own tokens from ``start`` (after its prefix) to the next separator."""
    end = start
    while end < len(ids) and ids[end] != separator:
        end += 1
    return np.arange(min(start + prefix_tokens, end), end), end


def _prefix_count(tokenizer, prefix: str) -> int:
    return prefix_token_count(tokenizer, prefix)


def _special_embedding(backbone, preprocessor, role: str) -> np.ndarray:
    """The token embedding of a special token (``"mask"``, ``"pad"``)."""
    token_id = preprocessor.special_token_ids[role]
    return backbone.token_embedding(tf.constant([token_id])).numpy()[0]


def bert_cross_encoder_path(matcher, query: str, product: str) -> Path:
    """A BERT / e5 cross-encoder run: ``<s> q </s>(</s>) p </s>`` packed, pooled, head."""
    model, preprocessor = matcher.model, matcher.preprocessor
    backbone, vocabulary = find_backbone(model), _vocabulary(preprocessor)
    ids, segment_ids, padding_mask = _bert_features(preprocessor, {"query": tf.constant([query]),
                                                                   "product": tf.constant([product])})
    separator = preprocessor.special_token_ids["sep"]
    q_positions, q_end = _text_region(ids, 1, separator, _prefix_count(preprocessor.tokenizer,
                                                                       preprocessor.query_prefix))
    p_start = q_end + 1 + (1 if q_end + 1 < len(ids) and ids[q_end + 1] == separator else 0)
    p_positions, _ = _text_region(ids, p_start, separator, _prefix_count(preprocessor.tokenizer,
                                                                         preprocessor.product_prefix))
    embeddings = backbone.token_embedding(tf.constant(ids[None])).numpy()[0].astype(np.float32)
    # Padding, not [MASK]: a pair of all-[MASK] texts is two identical texts, which a trained matcher
    # scores as a perfect match (the MiniLM demo cross-encoder: grade 1.98 of 2; padding: 1.25).
    baseline = _varying_baseline(embeddings, np.concatenate([q_positions, p_positions]),
                                 _special_embedding(backbone, preprocessor, "pad"))
    names = {layer.name for layer in model.layers}
    pooling = model.get_layer("mean_pooling") if "mean_pooling" in names else None
    head_layer = next(layer for layer in model.layers if layer.name in ("probabilities", "grade"))

    def forward(xs):
        hidden = _bert_states(backbone, xs[0], segment_ids, padding_mask)
        if pooling is not None:
            pooled = pooling(hidden, mask=_tile(padding_mask, tf.shape(hidden)[0]))
        else:
            pooled = backbone.pooled_dense(hidden[:, 0, :])
        return _grade(head_layer(pooled), matcher.head, matcher.labels)

    return Path([embeddings], [baseline], forward,
                {"query": Side(0, q_positions, [vocabulary[i] for i in ids[q_positions]]),
                 "product": Side(0, p_positions, [vocabulary[i] for i in ids[p_positions]])})


def _bert_tower_text(preprocessor, tower, text: str):
    """``(embeddings, baseline, tokens, positions, forward-to-vector)`` of a BERT tower."""
    backbone, vocabulary = find_backbone(tower), _vocabulary(preprocessor)
    ids, segment_ids, padding_mask = _bert_features(preprocessor, tf.constant([text]))
    positions, _ = _text_region(ids, 1, preprocessor.special_token_ids["sep"],
                                _prefix_count(preprocessor.tokenizer, preprocessor.prefix))
    embeddings = backbone.token_embedding(tf.constant(ids[None])).numpy()[0].astype(np.float32)
    baseline = _varying_baseline(embeddings, positions, _special_embedding(backbone, preprocessor, "mask"))
    after = [layer for layer in tower.layers if layer.name in ("projection", "l2_normalise")]
    pooling = tower.get_layer("mean_pooling")

    def vectors(x):
        hidden = _bert_states(backbone, x, segment_ids, padding_mask)
        out = pooling(hidden, mask=_tile(padding_mask, tf.shape(hidden)[0]))
        for layer in after:
            out = layer(out)
        return tf.cast(out, tf.float32)

    return embeddings, baseline, [vocabulary[i] for i in ids[positions]], positions, vectors


# -- bi-encoders ----------------------------------------------------------------------------------
def _tower_text(preprocessor, tower, text: str):
    builder = _bert_tower_text if find_backbone(tower) is not None else _bilstm_tower_text
    return builder(preprocessor, tower, text)


def bi_encoder_paths(encoder, query: str, product: str) -> dict[str, Path]:
    """Two paths for a :class:`~semmatch_tf.models.bi_encoder.TwoTowerEncoder`: the cosine as a
    function of the query's embeddings (the product's vector fixed), and of the product's."""
    q = _tower_text(encoder.query_preprocessor, encoder.query_tower, query)
    p = _tower_text(encoder.product_preprocessor, encoder.product_tower, product)
    q_vector = q[4](tf.constant(q[0][None]))[0]
    p_vector = p[4](tf.constant(p[0][None]))[0]
    paths = {}
    for name, (embeddings, baseline, tokens, positions, vectors), other in (("query", q, p_vector),
                                                                            ("product", p, q_vector)):
        def forward(xs, vectors=vectors, other=other):
            return tf.linalg.matvec(vectors(xs[0]), other)

        paths[name] = Path([embeddings], [baseline], forward, {name: Side(0, positions, tokens)})
    return paths


def is_bert_matcher(matcher) -> bool:
    return isinstance(matcher.model, keras.Model) and find_backbone(matcher.model) is not None
