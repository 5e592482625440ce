"""Builders of the cross-encoder families (named in :mod:`semmatch_tf.models.registry`).

Each returns ``(preprocessor, model)``: the preprocessor maps ``{"query": strings, "product":
strings}`` to the model's input tensors (fixed shapes; it runs in tf.data and inside exported
models); the model maps those to class probabilities ``[B, C]`` or a unit grade ``[B, 1]``
(float32).
"""

from __future__ import annotations

from typing import Sequence

from semmatch_tf.models.bert import BertPreprocessor, build_bert_cross_encoder, fine_tunable_backbone, side_prefixes
from semmatch_tf.models.bilstm import BiLSTMMatcher
from semmatch_tf.models.registry import CROSS_ENCODER, family
from semmatch_tf.models.tfidf import MATCH_FEATURES, MatchFeatures
from semmatch_tf.text import WordPieceTokenizer
from semmatch_tf.text.preprocessor import PairPreprocessor


def build_cross_encoder(model_config, text_config, *, vocabulary: list[str] | None, num_classes: int,
                        titles: Sequence[str] = ()):
    """``(preprocessor, model)`` for the cross-encoder family ``model_config.family``.

    Args:
        model_config: the run config's ``model`` section.
        text_config: the ``text`` section (lengths, case folding).
        vocabulary: the learned WordPiece vocabulary, or None for a pretrained BERT's own.
        num_classes: the label scheme's class count (the classification head's width).
        titles: the training titles (``model.match_features`` fits idf and product types on them).
    """
    entry = family(model_config.family)
    if entry.kind != CROSS_ENCODER:
        raise ValueError(f"model family {entry.name!r} is not a cross-encoder")
    return entry.build(model_config, text_config, vocabulary=vocabulary, num_classes=num_classes, titles=titles)


def uses_own_vocabulary(model_config) -> bool:
    """Whether the family learns a WordPiece vocabulary from the training text."""
    return family(model_config.family).learns_vocabulary(model_config)


def build_bilstm_pair(model_config, text_config, *, vocabulary: list[str], num_classes: int,
                      titles: Sequence[str] = ()):
    """The ``bilstm`` family: WordPiece ids of each side -> :class:`BiLSTMMatcher`; with
    ``model.match_features`` also the raw pair's :class:`MatchFeatures` (fitted on ``titles``)."""
    buckets = bool(text_config.length_buckets)
    pair_features = None
    if model_config.match_features:
        if not titles:
            raise ValueError("model.match_features: the training titles are needed to fit idf and product types")
        pair_features = MatchFeatures.from_titles(titles, name="match_features")
    preprocessor = PairPreprocessor(
        WordPieceTokenizer(vocabulary, lowercase=text_config.lowercase, strip_accents=text_config.strip_accents),
        query_length=text_config.query_length, product_length=text_config.product_length,
        normalize_units=text_config.normalize_units, pair_features=pair_features)
    model = build_matcher(model_config, vocabulary_size=len(vocabulary), num_classes=num_classes,
                          query_length=None if buckets else text_config.query_length,
                          product_length=None if buckets else text_config.product_length,
                          match_features=len(MATCH_FEATURES) if pair_features is not None else 0)
    return preprocessor, model


def build_bert_pair(model_config, text_config, *, vocabulary: list[str] | None, num_classes: int,
                    titles: Sequence[str] = ()):
    """The ``bert`` family: one packed ``[CLS] query [SEP] product [SEP]`` sequence -> BERT -> head."""
    bert = model_config.bert
    tokenizer, backbone = fine_tunable_backbone(bert, text_config, vocabulary)
    query_prefix, product_prefix = side_prefixes(bert)
    preprocessor = BertPreprocessor(tokenizer, sequence_length=bert.sequence_length, query_prefix=query_prefix,
                                    product_prefix=product_prefix, name="bert_preprocessor")
    model = build_bert_cross_encoder(backbone, num_classes=num_classes, head=model_config.head,
                                     pooling=bert.pooling, dropout=bert.dropout)
    return preprocessor, model


def build_matcher(model_config, *, vocabulary_size: int, num_classes: int, query_length: int | None,
                  product_length: int | None, match_features: int = 0) -> BiLSTMMatcher:
    """The BiLSTM matcher of the config's ``model`` section (lengths None: any length, for buckets)."""
    return BiLSTMMatcher(vocabulary_size, num_classes=num_classes, head=model_config.head,
                         embedding_dim=model_config.embedding_dim, lstm_units=model_config.lstm_units,
                         hidden_units=model_config.hidden_units, pooling=model_config.pooling,
                         dropout=model_config.dropout, embedding_dropout=model_config.embedding_dropout,
                         exact_match=model_config.exact_match,
                         query_length=query_length, product_length=product_length,
                         match_features=match_features, name="bilstm_matcher")
