"""Keras models: the BiLSTM matcher, shared encoders and heads, and a factory from config."""

from semmatch_tf.models.bilstm import BiLSTMMatcher
from semmatch_tf.models.encoders import BiLSTMEncoder, ExactMatchFlags, InteractionFeatures, MaskedPooling
from semmatch_tf.models.heads import loss_for, metrics_for, output_head, predicted_grades

__all__ = ["BiLSTMMatcher", "BiLSTMEncoder", "InteractionFeatures", "MaskedPooling", "build_matcher",
           "build_cross_encoder", "uses_own_vocabulary", "loss_for", "metrics_for", "output_head",
           "predicted_grades"]


def build_cross_encoder(model_config, text_config, *, vocabulary: list[str] | None, num_classes: int):
    """``(preprocessor, model)`` for a cross-encoder family (new families plug in here).

    The preprocessor maps ``{"query": strings, "product": strings}`` to the model's input tensors
    (fixed shapes) and runs in tf.data and inside exported models; the model maps those to class
    probabilities ``[B, C]`` or a unit grade ``[B, 1]`` (float32).
    """
    if model_config.family == "bilstm":
        from semmatch_tf.text import WordPieceTokenizer
        from semmatch_tf.text.preprocessor import PairPreprocessor

        buckets = bool(text_config.length_buckets)
        preprocessor = PairPreprocessor(
            WordPieceTokenizer(vocabulary, lowercase=text_config.lowercase, strip_accents=text_config.strip_accents),
            query_length=text_config.query_length, product_length=text_config.product_length)
        model = build_matcher(model_config, vocabulary_size=len(vocabulary), num_classes=num_classes,
                              query_length=None if buckets else text_config.query_length,
                              product_length=None if buckets else text_config.product_length)
        return preprocessor, model
    if model_config.family == "bert":
        from semmatch_tf.models.bert import (BertPreprocessor, build_bert_cross_encoder, fine_tunable_backbone,
                                             side_prefixes)

        bert = model_config.bert
        tokenizer, backbone = fine_tunable_backbone(bert, text_config, vocabulary)
        query_prefix, product_prefix = side_prefixes(bert)
        preprocessor = BertPreprocessor(tokenizer, sequence_length=bert.sequence_length, query_prefix=query_prefix,
                                        product_prefix=product_prefix, name="bert_preprocessor")
        model = build_bert_cross_encoder(backbone, num_classes=num_classes, head=model_config.head,
                                         pooling=bert.pooling, dropout=bert.dropout)
        return preprocessor, model
    raise ValueError(f"model family {model_config.family!r} is not a cross-encoder")


def uses_own_vocabulary(model_config) -> bool:
    """Whether a family learns a WordPiece vocabulary from the training text (pretrained BERTs
    bring their own)."""
    return not (model_config.family.startswith("bert") and model_config.bert.source != "scratch")


def build_matcher(model_config, *, vocabulary_size: int, num_classes: int, query_length: int,
                  product_length: int):
    """Build the cross-encoder named by ``model_config.family`` (see training.config.ModelConfig)."""
    if model_config.family == "bilstm":
        return BiLSTMMatcher(vocabulary_size, num_classes=num_classes, head=model_config.head,
                             embedding_dim=model_config.embedding_dim, lstm_units=model_config.lstm_units,
                             hidden_units=model_config.hidden_units, pooling=model_config.pooling,
                             dropout=model_config.dropout, embedding_dropout=model_config.embedding_dropout,
                             exact_match=model_config.exact_match,
                             query_length=query_length, product_length=product_length, name="bilstm_matcher")
    raise ValueError(f"unknown model family {model_config.family!r}")
