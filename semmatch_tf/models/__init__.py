"""Keras models: the BiLSTM matcher, BERT tasks, bi-encoder towers, and the family registry.

Bi-encoders: :func:`build_towers` (the query and product towers a config names),
:class:`TwoTowerEncoder` (two towers that embed texts), :class:`TextEmbedder` (one tower, texts in,
L2-normalised vectors out) and :func:`pretrained_encoder` (a pretrained checkpoint as both towers,
zero-shot). :func:`register_keras_classes` lets ``keras.saving.load_model`` read every family's
saved models.

Names are loaded on first use (PEP 562), so ``semmatch_tf.models.registry`` — which config
validation reads — does not import TensorFlow.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "BiLSTMMatcher": "bilstm",
    "BiLSTMEncoder": "encoders", "ExactMatchFlags": "encoders", "InteractionFeatures": "encoders",
    "MaskedPooling": "encoders",
    "loss_for": "heads", "metrics_for": "heads", "output_head": "heads", "predicted_grades": "heads",
    "build_cross_encoder": "cross_encoders", "build_matcher": "cross_encoders",
    "uses_own_vocabulary": "cross_encoders",
    "Family": "registry", "family": "registry", "family_names": "registry", "register_family": "registry",
    "register_keras_classes": "registry",
    "TextEmbedder": "bi_encoder", "TwoTowerEncoder": "bi_encoder", "build_towers": "bi_encoder",
    "pretrained_encoder": "bi_encoder",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
